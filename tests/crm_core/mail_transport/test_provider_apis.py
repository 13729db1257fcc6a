"""Mailgun, SendGrid and Postmark backends against local fakes of their documented send APIs."""

from __future__ import annotations

import time
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

import pytest

from crm_core.mail_transport.backends import backend_from_url, check_mail_url
from crm_core.mail_transport.base import PermanentDeliveryError, TransientDeliveryError
from crm_core.mail_transport.http_api import HttpApiSettings, HttpSendBackend
from crm_core.mail_transport.messages import AutoSubmitted, OutboundMail, build_message
from crm_core.mail_transport.provider_apis import MailgunBackend, PostmarkBackend, SendGridBackend
from tests.mail_api_server import Answer
from tests.provider_mail_apis import (
    DOMAIN,
    KEY,
    ProviderApi,
    documented,
    mail_url,
    running_provider_api,
)
from tests.smtp_server import self_signed_certificate, server_tls_context

PROVIDERS = ("mailgun", "sendgrid", "postmark")


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return self_signed_certificate(tmp_path_factory.mktemp("tls"))


@pytest.fixture(params=PROVIDERS)
def fake(request: pytest.FixtureRequest, certificate: tuple[Path, Path]) -> Iterator[ProviderApi]:
    with running_provider_api(request.param, tls=server_tls_context(*certificate)) as api:
        yield api


def backend(
    fake: ProviderApi, cafile: Path, sleeps: list[float], **settings: object
) -> HttpSendBackend:
    """The fake's backend, its waits recorded instead of slept."""
    base = f"https://127.0.0.1:{fake.api.port}"
    options = {"token": KEY, "cafile": str(cafile), "read_timeout": 5.0, **settings}
    classes = {"mailgun": MailgunBackend, "sendgrid": SendGridBackend, "postmark": PostmarkBackend}
    url = f"{base}/v3/{DOMAIN}" if fake.name == "mailgun" else base
    return classes[fake.name](HttpApiSettings(url=url, **options), sleep=sleeps.append)  # type: ignore[arg-type]


def campaign_message() -> EmailMessage:
    return build_message(
        OutboundMail(
            sender="Acme Shop <news@acme.example>",
            to="Ann Example <ann@example.org>",
            subject="Grüße zum Frühling",
            text="Hello Ann",
            html="<p>Hello Ann</p>",
            unsubscribe_url="https://crm.example/unsubscribe/abc",
            auto_submitted=AutoSubmitted.GENERATED,
        )
    )


def test_each_provider_gets_its_documented_request_and_its_id_is_returned(
    fake: ProviderApi, certificate: tuple[Path, Path]
) -> None:
    sender = backend_from_url(mail_url(fake, certificate[0]))
    with sender:
        ids = [
            sender.send(campaign_message(), idempotency_key=f"campaign-send-{n}") for n in (1, 2)
        ]
    assert fake.problems == []
    assert ids == fake.ids
    assert len(set(ids)) == 2


def test_mailgun_form_fields(certificate: tuple[Path, Path]) -> None:
    with running_provider_api("mailgun", tls=server_tls_context(*certificate)) as fake:
        message = campaign_message()
        with backend_from_url(mail_url(fake, certificate[0]) + "&testmode=1&tag=spring") as sender:
            provider_id = sender.send(message)
    assert fake.problems == []
    fields = fake.requests[0].body
    values = dict(fields)
    assert values["from"] == "Acme Shop <news@acme.example>"
    assert [v for k, v in fields if k == "to"] == ["Ann Example <ann@example.org>"]
    assert values["subject"] == "Grüße zum Frühling"
    assert (values["text"].strip(), values["html"].strip()) == ("Hello Ann", "<p>Hello Ann</p>")
    assert values["h:List-Unsubscribe"] == "<https://crm.example/unsubscribe/abc>"
    assert values["h:List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert values["h:Auto-Submitted"] == "auto-generated"
    assert (values["o:testmode"], values["o:tag"]) == ("yes", "spring")
    # Sent under our Message-ID, which Mailgun answers as the id.
    assert values["h:Message-ID"] == message["Message-ID"] == provider_id


def test_sendgrid_mail_send_document(certificate: tuple[Path, Path]) -> None:
    with running_provider_api("sendgrid", tls=server_tls_context(*certificate)) as fake:
        message = campaign_message()
        with backend_from_url(mail_url(fake, certificate[0]) + "&sandbox=1") as sender:
            provider_id = sender.send(message)
    assert fake.problems == []
    body = fake.requests[0].body
    assert body["personalizations"] == [
        {"to": [{"email": "ann@example.org", "name": "Ann Example"}]}
    ]
    assert body["from"] == {"email": "news@acme.example", "name": "Acme Shop"}
    assert body["subject"] == "Grüße zum Frühling"
    assert [c["type"] for c in body["content"]] == ["text/plain", "text/html"]
    assert body["headers"]["Message-ID"] == message["Message-ID"]
    assert body["headers"]["List-Unsubscribe"] == "<https://crm.example/unsubscribe/abc>"
    assert body["mail_settings"] == {"sandbox_mode": {"enable": True}}
    assert provider_id == fake.ids[0]


def test_postmark_email_document(certificate: tuple[Path, Path]) -> None:
    with running_provider_api("postmark", tls=server_tls_context(*certificate)) as fake:
        message = campaign_message()
        with backend_from_url(mail_url(fake, certificate[0]) + "&stream=broadcast") as sender:
            provider_id = sender.send(message)
    assert fake.problems == []
    body = fake.requests[0].body
    assert (body["From"], body["To"]) == (
        "Acme Shop <news@acme.example>",
        "Ann Example <ann@example.org>",
    )
    assert (body["TextBody"].strip(), body["HtmlBody"].strip()) == ("Hello Ann", "<p>Hello Ann</p>")
    assert body["MessageStream"] == "broadcast"
    headers = {h["Name"]: h["Value"] for h in body["Headers"]}
    assert headers["Message-ID"] == message["Message-ID"]
    assert headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert provider_id == fake.ids[0]


def test_a_rate_limit_is_waited_out_as_the_provider_asks(
    fake: ProviderApi, certificate: tuple[Path, Path]
) -> None:
    fake.api.script.append(documented(fake.name, "rate_limited"))
    sleeps: list[float] = []
    with backend(fake, certificate[0], sleeps) as sender:
        provider_id = sender.send(campaign_message())
    assert provider_id == fake.ids[0]
    assert len(fake.requests) == 2
    # Mailgun's Retry-After: 2; SendGrid's X-RateLimit-Reset lies in the past; Postmark
    # gives no time, so the backoff's first step.
    assert sleeps == {"mailgun": [2.0], "sendgrid": [0.0], "postmark": [0.5]}[fake.name]


def test_throttled_past_the_retries_is_transient_and_surely_not_sent(
    fake: ProviderApi, certificate: tuple[Path, Path]
) -> None:
    for _ in range(3):
        fake.api.script.append(documented(fake.name, "rate_limited"))
    sleeps: list[float] = []
    with (
        backend(fake, certificate[0], sleeps, retries=2) as sender,
        pytest.raises(TransientDeliveryError, match="429") as caught,
    ):
        sender.send(campaign_message())
    assert caught.value.maybe_sent is False
    assert len(fake.requests) == 3


def test_a_retry_that_would_pass_the_deadline_is_not_made(
    fake: ProviderApi, certificate: tuple[Path, Path]
) -> None:
    throttled = documented(fake.name, "rate_limited")
    if fake.name == "sendgrid":  # its documented reset lies in the past: one a minute ahead
        throttled.headers["X-RateLimit-Reset"] = str(int(time.time()) + 60)
    fake.api.script.append(throttled)
    sleeps: list[float] = []
    sender = backend(fake, certificate[0], sleeps, backoff=30.0)
    sender.clock = lambda: 100.0
    sender.limit_to(101.0)
    with sender, pytest.raises(TransientDeliveryError):
        sender.send(campaign_message())
    assert (sleeps, len(fake.requests)) == ([], 1)


@pytest.mark.parametrize(
    ("provider", "answer", "words"),
    [
        ("mailgun", "bad_request", "'from' parameter is missing"),
        ("mailgun", "unauthorized", "Forbidden"),
        ("sendgrid", "bad_request", "does not contain a valid address"),
        ("sendgrid", "unauthorized", "authorization required"),
        ("postmark", "inactive_recipient", "marked as inactive"),
        ("postmark", "unauthorized", "X-Postmark-Server-Token"),
    ],
)
def test_a_refusal_is_permanent_and_names_the_providers_reason(
    provider: str, answer: str, words: str, certificate: tuple[Path, Path]
) -> None:
    with running_provider_api(provider, tls=server_tls_context(*certificate)) as fake:
        fake.api.script.append(documented(provider, answer))
        sleeps: list[float] = []
        with (
            backend(fake, certificate[0], sleeps) as sender,
            pytest.raises(PermanentDeliveryError, match=words),
        ):
            sender.send(campaign_message())
        assert (len(fake.requests), sleeps) == (1, [])


def test_a_wrong_key_is_refused_by_the_fake_as_by_the_provider(
    fake: ProviderApi, certificate: tuple[Path, Path]
) -> None:
    with (
        backend_from_url(mail_url(fake, certificate[0], key="wrong")) as sender,
        pytest.raises(PermanentDeliveryError, match="401"),
    ):
        sender.send(campaign_message())
    assert fake.problems


def test_postmark_accepting_with_an_error_code_is_a_refusal(certificate: tuple[Path, Path]) -> None:
    with running_provider_api("postmark", tls=server_tls_context(*certificate)) as fake:
        fake.api.script.append(
            Answer(body={"ErrorCode": 406, "Message": "Found inactive addresses: ann@example.org."})
        )
        with (
            backend(fake, certificate[0], []) as sender,
            pytest.raises(PermanentDeliveryError, match="inactive"),
        ):
            sender.send(campaign_message())


def test_a_timeout_after_the_request_went_is_never_repeated(
    fake: ProviderApi, certificate: tuple[Path, Path]
) -> None:
    # None of the three honours an idempotency key: a second POST could deliver it twice.
    fake.api.script.append(Answer(delay=1.5))
    with (
        backend(fake, certificate[0], [], read_timeout=0.3) as sender,
        pytest.raises(TransientDeliveryError) as caught,
    ):
        sender.send(campaign_message())
    assert caught.value.maybe_sent is True
    assert len(fake.requests) == 1


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("mailgun+https://api.mailgun.net/v3/mg.example.com", "needs the API key"),
        ("mailgun+https://api:k@api.mailgun.net", "sending domain"),
        ("mailgun+https://api:k@api.mailgun.net/v2/mg.example.com/x", "sending domain"),
        ("sendgrid+https://apikey:k@api.sendgrid.com/v3/mail/send", "no path"),
        ("postmark+https://api.postmarkapp.com", "needs the API key"),
        ("postmark+https://:t@api.postmarkapp.com?timeout=x", "timeout is not a number"),
    ],
)
def test_a_provider_url_missing_a_part_is_refused_at_startup(url: str, words: str) -> None:
    problem = check_mail_url(url)
    assert problem is not None
    assert words in problem


def test_the_documented_examples_are_usable() -> None:
    for url in (
        "mailgun+https://api:key-123@api.eu.mailgun.net/v3/mg.example.com",
        "sendgrid+https://apikey:SG.abc@api.sendgrid.com",
        "postmark+https://:server-token@api.postmarkapp.com?stream=broadcast",
        "postmark+https://server-token@api.postmarkapp.com",
    ):
        assert check_mail_url(url) is None, url
