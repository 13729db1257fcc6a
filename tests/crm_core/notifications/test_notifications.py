"""Subscriptions and signed deliveries, posted to a real HTTP server on loopback."""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker
from standardwebhooks import Webhook

from crm_core import models as m
from crm_core.db import make_session_factory, utcnow
from crm_core.errors import InvalidInput
from crm_core.notifications.posting import (
    AttemptResult,
    Request,
    SendSettings,
    UnsafeTarget,
    check_target,
    claim_due,
    deliver_due,
    post,
)
from crm_core.notifications.services import add_subscription, notify, remove_subscription
from tests.crm_core.notifications.samples import sample_event
from tests.mail_api_server import HUGE, Answer, MailApi, Rebinding, running_mail_api

LOCAL = SendSettings(allow_private=True, connect_timeout=2, read_timeout=2, max_attempts=3)


@pytest.fixture
def receiver() -> Iterator[MailApi]:
    with running_mail_api() as api:
        yield api


@pytest.fixture
def sessions(committed_db: Engine) -> sessionmaker[Session]:
    return make_session_factory(committed_db)


def subscribe(sessions: sessionmaker[Session], url: str, events: list[str]) -> tuple[int, str]:
    with sessions.begin() as session:
        created = add_subscription(session, url=url, events=events)
        return created.id, created.secret


def escalate(sessions: sessionmaker[Session], case_id: int = 7) -> list[int]:
    with sessions.begin() as session:
        return notify(session, sample_event(case_id))


def deliveries(sessions: sessionmaker[Session]) -> list[m.NotificationDelivery]:
    with sessions() as session:
        return list(
            session.scalars(select(m.NotificationDelivery).order_by(m.NotificationDelivery.id))
        )


def attempts(sessions: sessionmaker[Session]) -> list[m.DeliveryAttempt]:
    with sessions() as session:
        return list(session.scalars(select(m.DeliveryAttempt).order_by(m.DeliveryAttempt.id)))


@pytest.mark.parametrize(
    ("url", "events", "field"),
    [
        ("ftp://hooks.example/x", ["case.escalated"], "url"),
        ("https:///nohost", ["case.escalated"], "url"),
        ("https://user:pw@hooks.example/x", ["case.escalated"], "url"),
        ("https://hooks.example:99999/x", ["case.escalated"], "url"),
        ("https://hooks.example/x", ["case.exploded"], "events"),
        ("https://hooks.example/x", [" ", ""], "events"),
    ],
)
def test_bad_subscriptions_are_refused(
    session: Session, url: str, events: list[str], field: str
) -> None:
    with pytest.raises(InvalidInput) as raised:
        add_subscription(session, url=url, events=events)
    assert raised.value.error_dicts()[0]["field"] == field


def test_signed_delivery_verifies_with_the_reference_library(
    sessions: sessionmaker[Session], receiver: MailApi
) -> None:
    _, secret = subscribe(sessions, receiver.url, ["case.escalated"])
    subscribe(sessions, receiver.url, ["followup.created"])  # not this event
    [delivery_id] = escalate(sessions)

    assert deliver_due(sessions, settings=LOCAL) == {"delivered": 1}

    [request] = receiver.requests
    payload = Webhook(secret).verify(request.raw, request.headers)
    assert payload["type"] == "case.escalated"
    assert payload["data"] == sample_event(7).model_dump(mode="json")
    assert payload["data"]["case"]["id"] == 7
    assert request.headers["webhook-id"] == f"msg_{delivery_id}"
    [delivery] = deliveries(sessions)
    assert (delivery.status, delivery.attempts) == ("delivered", 1)
    [attempt] = attempts(sessions)
    assert (attempt.status_code, attempt.error) == (200, None)
    # Nothing is due any more.
    assert deliver_due(sessions, settings=LOCAL) == {}


def test_a_failing_receiver_is_retried_later_with_the_same_id(
    sessions: sessionmaker[Session], receiver: MailApi
) -> None:
    subscribe(sessions, receiver.url, ["*"])
    escalate(sessions)
    receiver.script.append(Answer(status=503, headers={"Retry-After": "120"}))

    assert deliver_due(sessions, settings=LOCAL) == {"pending": 1}
    [delivery] = deliveries(sessions)
    assert delivery.attempts == 1
    assert delivery.last_error == "answered 503"
    # Retry-After is honoured: not due for two minutes.
    assert delivery.next_attempt_at >= utcnow() + dt.timedelta(seconds=110)
    assert deliver_due(sessions, settings=LOCAL) == {}

    with sessions.begin() as session:
        session.get(m.NotificationDelivery, delivery.id).next_attempt_at = utcnow()
    assert deliver_due(sessions, settings=LOCAL) == {"delivered": 1}
    first, second = receiver.requests
    assert first.headers["webhook-id"] == second.headers["webhook-id"]
    assert [a.status_code for a in attempts(sessions)] == [503, 200]


def test_gives_up_after_the_last_attempt(
    sessions: sessionmaker[Session], receiver: MailApi
) -> None:
    subscribe(sessions, receiver.url, ["*"])
    escalate(sessions)
    for _ in range(LOCAL.max_attempts):
        receiver.script.append(Answer(status=500))
        with sessions.begin() as session:
            for delivery in session.scalars(select(m.NotificationDelivery)):
                delivery.next_attempt_at = utcnow()
        deliver_due(sessions, settings=LOCAL)
    [delivery] = deliveries(sessions)
    assert (delivery.status, delivery.attempts) == ("failed", LOCAL.max_attempts)
    assert len(receiver.requests) == LOCAL.max_attempts


def test_redirects_are_not_followed(sessions: sessionmaker[Session], receiver: MailApi) -> None:
    subscribe(sessions, receiver.url, ["*"])
    escalate(sessions)
    receiver.script.append(
        Answer(status=302, headers={"Location": f"http://127.0.0.1:{receiver.port}/elsewhere"})
    )
    assert deliver_due(sessions, settings=LOCAL) == {"failed": 1}
    assert [r.path for r in receiver.requests] == ["/v1/send"]
    [attempt] = attempts(sessions)
    assert attempt.status_code == 302
    assert "not followed" in (attempt.error or "")


def test_a_dead_receiver_is_a_retryable_attempt(sessions: sessionmaker[Session]) -> None:
    with running_mail_api() as gone:
        url = gone.url
    subscribe(sessions, url, ["*"])
    escalate(sessions)
    assert deliver_due(sessions, settings=LOCAL) == {"pending": 1}
    [attempt] = attempts(sessions)
    assert attempt.status_code is None
    assert "ConnectionError" in (attempt.error or "")


def test_private_targets_are_refused_unless_allowed(
    sessions: sessionmaker[Session], receiver: MailApi
) -> None:
    subscribe(sessions, receiver.url, ["*"])
    escalate(sessions)
    strict = SendSettings(connect_timeout=2, read_timeout=2)
    assert deliver_due(sessions, settings=strict) == {"failed": 1}
    assert receiver.requests == []
    [attempt] = attempts(sessions)
    assert "127.0.0.1, which is not a public address" in (attempt.error or "")


@pytest.mark.parametrize(
    "address",
    ["127.0.0.1", "10.1.2.3", "192.168.0.10", "172.16.5.5", "169.254.169.254", "::1",
     "fd00::1", "fe80::1%eth0", "224.0.0.1", "0.0.0.0", "100.64.0.1", "240.0.0.1"],
)  # fmt: skip
def test_check_target_refuses_non_public_addresses(address: str) -> None:
    with pytest.raises(UnsafeTarget):
        check_target(
            "https://hooks.example/x", allow_private=False, resolver=lambda host, port: [address]
        )


def test_check_target_accepts_public_addresses() -> None:
    check_target(
        "https://hooks.example/x",
        allow_private=False,
        resolver=lambda host, port: ["93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c"],
    )


def test_a_name_that_rebinds_after_the_check_is_not_followed(
    sessions: sessionmaker[Session],
) -> None:
    """The check sees one address, then the name points at an internal service."""
    with (
        running_mail_api() as receiver,
        running_mail_api(host="127.0.0.2", port=receiver.port) as internal,
    ):
        resolver = Rebinding("127.0.0.1", "127.0.0.2")
        subscribe(sessions, f"http://hooks.rebind.test:{receiver.port}/v1/send", ["*"])
        escalate(sessions)
        poster = functools.partial(post, resolver=resolver)
        assert deliver_due(sessions, settings=LOCAL, poster=poster) == {"delivered": 1}
    assert resolver.calls == [("hooks.rebind.test", receiver.port)]
    [request] = receiver.requests
    assert request.headers["Host"] == f"hooks.rebind.test:{receiver.port}"
    assert internal.requests == []


def test_the_answer_body_is_not_read(sessions: sessionmaker[Session], receiver: MailApi) -> None:
    subscribe(sessions, receiver.url, ["*"])
    escalate(sessions)
    receiver.script.append(Answer(raw=b"x" * HUGE))
    assert deliver_due(sessions, settings=LOCAL) == {"delivered": 1}
    assert receiver.answered.get(timeout=30) is False


def test_a_retry_after_date_without_a_zone_is_utc_and_spoils_nothing(
    sessions: sessionmaker[Session], receiver: MailApi
) -> None:
    subscribe(sessions, receiver.url, ["*"])
    first, second = escalate(sessions, 1) + escalate(sessions, 2)
    in_ten_minutes = (utcnow() + dt.timedelta(minutes=10)).strftime("%a, %d %b %Y %H:%M:%S")
    receiver.script.append(Answer(status=503, headers={"Retry-After": in_ten_minutes}))

    assert deliver_due(sessions, settings=LOCAL) == {"pending": 1, "delivered": 1}
    by_id = {d.id: d for d in deliveries(sessions)}
    assert (by_id[first].status, by_id[first].attempts) == ("pending", 1)
    assert by_id[first].next_attempt_at >= utcnow() + dt.timedelta(minutes=9)
    assert by_id[second].status == "delivered"


def test_an_attempt_that_raises_is_recorded_on_its_delivery_alone(
    sessions: sessionmaker[Session], receiver: MailApi
) -> None:
    subscribe(sessions, receiver.url, ["*"])
    first, second = escalate(sessions, 1) + escalate(sessions, 2)

    def flaky(request: Request, settings: SendSettings) -> AttemptResult:
        if request.headers["webhook-id"] == f"msg_{first}":
            raise TypeError("can't subtract offset-naive and offset-aware datetimes")
        return post(request, settings)

    assert deliver_due(sessions, settings=LOCAL, poster=flaky) == {"pending": 1, "delivered": 1}
    by_id = {d.id: d for d in deliveries(sessions)}
    assert (by_id[first].status, by_id[first].attempts) == ("pending", 1)
    assert by_id[first].last_error == (
        "TypeError: can't subtract offset-naive and offset-aware datetimes"
    )
    assert by_id[second].status == "delivered"
    # It counts as an attempt, so it ends failed after the last one instead of looping.
    for _ in range(LOCAL.max_attempts - 1):
        with sessions.begin() as session:
            session.get(m.NotificationDelivery, first).next_attempt_at = utcnow()
        deliver_due(sessions, settings=LOCAL, poster=flaky)
    assert {d.id: d.status for d in deliveries(sessions)}[first] == "failed"


def test_two_claimers_never_take_the_same_delivery(postgres_committed: Engine) -> None:
    pg = make_session_factory(postgres_committed)
    subscribe(pg, "https://hooks.example/x", ["*"])
    for case_id in range(5):
        escalate(pg, case_id)
    with pg.begin() as first:
        taken = claim_due(first, now=utcnow(), limit=3)
        with pg.begin() as second:
            other = claim_due(second, now=utcnow(), limit=10)
    assert len(taken) == 3
    assert len(other) == 2
    assert set(other).isdisjoint(taken)
    # Claimed deliveries wait out their lease.
    with pg() as session:
        assert claim_due(session, now=utcnow(), limit=10) == []


def test_removing_a_subscription_drops_what_it_is_owed(sessions: sessionmaker[Session]) -> None:
    subscription_id, _ = subscribe(sessions, "https://hooks.example/x", ["*"])
    escalate(sessions)
    with sessions.begin() as session:
        assert remove_subscription(session, subscription_id=subscription_id)
        assert not remove_subscription(session, subscription_id=subscription_id)
    assert deliveries(sessions) == []
