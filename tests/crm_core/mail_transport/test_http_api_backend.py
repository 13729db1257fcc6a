"""The HTTP e-mail API backend against a local HTTP server: body, key, retries, classification."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest

from crm_core.mail_transport.backends import backend_from_url
from crm_core.mail_transport.base import PermanentDeliveryError, TransientDeliveryError
from crm_core.mail_transport.http_api import HttpApiBackend, HttpApiSettings
from crm_core.mail_transport.messages import AutoSubmitted, OutboundMail, build_message
from crm_core.mail_transport.rate_limit import RateLimitedBackend, TokenBucket
from tests.mail_api_server import HUGE, Answer, MailApi, Rebinding, running_mail_api
from tests.services import free_port


@pytest.fixture
def api() -> Iterator[MailApi]:
    with running_mail_api() as server:
        yield server


def backend(api: MailApi, sleeps: list[float], **settings: object) -> HttpApiBackend:
    options = {"url": api.url, "token": "tok", "read_timeout": 5.0, **settings}
    return HttpApiBackend(HttpApiSettings(**options), sleep=sleeps.append)  # type: ignore[arg-type]


def campaign_message():  # type: ignore[no-untyped-def]
    return build_message(
        OutboundMail(
            sender="Acme <crm@acme.example>",
            to="Ann <ann@example.org>",
            subject="Grüße",
            text="Hello",
            html="<p>Hello</p>",
            unsubscribe_url="https://crm.example/unsubscribe/abc",
            auto_submitted=AutoSubmitted.GENERATED,
        )
    )


def test_a_message_is_posted_as_json_with_the_key_and_token(api: MailApi) -> None:
    sleeps: list[float] = []
    message = campaign_message()
    with backend(api, sleeps) as sender:
        provider_id = sender.send(message, idempotency_key="send-42")
    assert provider_id == "api-1"
    (request,) = api.requests
    assert request.path == "/v1/send"
    assert request.headers["Idempotency-Key"] == "send-42"
    assert request.headers["Authorization"] == "Bearer tok"
    body = request.body
    assert body["to"] == ["ann@example.org"]
    assert body["envelope_from"] == "crm@acme.example"
    assert body["subject"] == "Grüße"
    assert body["text"].strip() == "Hello"
    assert body["html"].strip() == "<p>Hello</p>"
    assert body["headers"]["List-Unsubscribe"] == "<https://crm.example/unsubscribe/abc>"
    assert body["headers"]["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert body["headers"]["Auto-Submitted"] == "auto-generated"
    assert body["headers"]["Message-ID"] == message["Message-ID"]
    assert sleeps == []


def test_429_and_5xx_are_retried_with_backoff_and_the_same_key(api: MailApi) -> None:
    api.script.extend([Answer(429), Answer(503), Answer(500)])
    sleeps: list[float] = []
    with backend(api, sleeps, retries=3, backoff=0.5) as sender:
        assert sender.send(campaign_message(), idempotency_key="send-7") == "api-4"
    assert sleeps == [0.5, 1.0, 2.0]
    assert {request.headers["Idempotency-Key"] for request in api.requests} == {"send-7"}
    assert len({request.body["headers"]["Message-ID"] for request in api.requests}) == 1


def test_retry_after_is_honoured_within_a_cap(api: MailApi) -> None:
    api.script.extend(
        [Answer(429, headers={"Retry-After": "3"}), Answer(429, headers={"Retry-After": "9999"})]
    )
    sleeps: list[float] = []
    with backend(api, sleeps) as sender:
        sender.send(campaign_message())
    assert sleeps == [3.0, 60.0]


def test_after_the_last_retry_the_error_is_transient(api: MailApi) -> None:
    api.script.extend([Answer(503)] * 3)
    sleeps: list[float] = []
    with (
        backend(api, sleeps, retries=2) as sender,
        pytest.raises(TransientDeliveryError, match="503") as caught,
    ):
        sender.send(campaign_message())
    assert len(api.requests) == 3
    assert not caught.value.maybe_sent


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 422])
def test_other_4xx_are_permanent_and_not_retried(api: MailApi, status: int) -> None:
    api.script.append(Answer(status, body={"error": "nope"}))
    sleeps: list[float] = []
    with backend(api, sleeps) as sender, pytest.raises(PermanentDeliveryError, match=str(status)):
        sender.send(campaign_message())
    assert len(api.requests) == 1
    assert sleeps == []


def test_redirects_are_not_followed(api: MailApi) -> None:
    api.script.append(Answer(307, headers={"Location": "http://169.254.169.254/"}))
    with backend(api, []) as sender, pytest.raises(PermanentDeliveryError, match="307"):
        sender.send(campaign_message())
    assert len(api.requests) == 1


def test_a_timed_out_answer_may_have_delivered(api: MailApi) -> None:
    api.script.extend([Answer(200, body={"id": "late"}, delay=2.0)])
    sleeps: list[float] = []
    sender = backend(api, sleeps, read_timeout=0.2, retries=1)
    # The retry (same key) succeeds: the provider dedupes on the key.
    assert sender.send(campaign_message(), idempotency_key="k") == "api-2"
    api.script.extend([Answer(200, delay=2.0), Answer(503)])
    with pytest.raises(TransientDeliveryError) as caught:
        sender.send(campaign_message(), idempotency_key="k2")
    assert caught.value.maybe_sent
    sender.close()


def test_an_unreachable_api_is_transient_and_nothing_was_sent() -> None:
    sleeps: list[float] = []
    url = f"http://127.0.0.1:{free_port()}/send"
    sender = HttpApiBackend(HttpApiSettings(url=url, retries=2), sleep=sleeps.append)
    with pytest.raises(TransientDeliveryError, match="unreachable") as caught:
        sender.send(campaign_message())
    assert not caught.value.maybe_sent
    assert sleeps == [0.5, 1.0]


def test_a_non_json_success_falls_back_to_the_message_id(api: MailApi) -> None:
    api.script.append(Answer(202, body=None))
    message = campaign_message()
    with backend(api, []) as sender:
        assert sender.send(message) == message["Message-ID"]


def test_the_url_password_becomes_the_bearer_token_not_part_of_the_url(api: MailApi) -> None:
    url = api.url.replace("http://", "http://api:s%3Dcret@") + "?timeout=5&retries=0"
    with backend_from_url(url) as sender:
        sender.send(campaign_message())
    (request,) = api.requests
    assert request.headers["Authorization"] == "Bearer s=cret"
    assert request.path == "/v1/send"


def test_a_batch_posts_to_the_address_its_name_had_when_it_opened() -> None:
    with (
        running_mail_api() as api,
        running_mail_api(host="127.0.0.2", port=api.port) as internal,
    ):
        resolver = Rebinding("127.0.0.1", "127.0.0.2")
        url = f"http://mail-api.rebind.test:{api.port}/v1/send"
        sender = HttpApiBackend(HttpApiSettings(url=url, retries=0), resolver=resolver)
        with sender:
            sender.send(campaign_message())
            sender.send(campaign_message())
    assert resolver.calls == [("mail-api.rebind.test", api.port)]
    assert [r.headers["Host"] for r in api.requests] == [f"mail-api.rebind.test:{api.port}"] * 2
    assert internal.requests == []


def test_a_name_that_does_not_resolve_is_transient_and_nothing_was_sent() -> None:
    def nowhere(host: str, port: int) -> list[str]:
        raise OSError("Name or service not known")

    sender = HttpApiBackend(HttpApiSettings(url="http://mail-api.test/send"), resolver=nowhere)
    with pytest.raises(TransientDeliveryError, match="cannot resolve") as caught:
        sender.send(campaign_message())
    assert not caught.value.maybe_sent


def test_only_the_first_64_kib_of_an_answer_are_read(api: MailApi) -> None:
    api.script.append(Answer(200, raw=b'{"id": "' + b"x" * HUGE + b'"}'))
    message = campaign_message()
    with backend(api, []) as sender:
        assert sender.send(message) == message["Message-ID"]  # cut short: not JSON
    assert api.answered.get(timeout=30) is False


def test_a_retry_after_date_without_a_zone_is_utc(api: MailApi) -> None:
    soon = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=30)
    api.script.append(Answer(503, headers={"Retry-After": soon.strftime("%a %b %d %H:%M:%S %Y")}))
    sleeps: list[float] = []
    with backend(api, sleeps) as sender:
        sender.send(campaign_message())
    [slept] = sleeps
    assert 20 < slept <= 30


def test_retries_never_outlive_the_batch_deadline(api: MailApi) -> None:
    # A clock that moves only when the backend sleeps: the deadline is 2 s away.
    now = [100.0]
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        now[0] += seconds

    api.script.extend([Answer(503)] * 6)
    settings = HttpApiSettings(url=api.url, read_timeout=5.0, retries=5, backoff=0.5)
    sender = HttpApiBackend(settings, sleep=sleep)
    sender.clock = lambda: now[0]  # type: ignore[method-assign]
    sender.limit_to(now[0] + 2.0)
    with sender, pytest.raises(TransientDeliveryError, match="503"):
        sender.send(campaign_message(), idempotency_key="send-9")
    # 0.5 s, then 1 s: a 2 s wait would end past the deadline, so there is no fourth try.
    assert sleeps == [0.5, 1.0]
    assert len(api.requests) == 3


def test_a_rate_limited_backend_hands_its_deadline_on(api: MailApi) -> None:
    inner = backend(api, [])
    limited = RateLimitedBackend(inner, TokenBucket(5))
    limited.limit_to(123.0)
    assert inner.deadline == 123.0
