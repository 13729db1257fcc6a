"""Inbound mail from Mailgun, SendGrid and Postmark end to end: posted as each provider posts
it, through gunicorn, the real Redis and one real worker into PostgreSQL.

For each provider a message to the support address opens a case, and the customer's reply
threads into it, exactly as mail read from a mailbox does; the same message posted again (or
received over another path) is the same message, filed once. A bounce event from each
provider suppresses the address of the message it names and marks that message.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import requests
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from crm_core import migrate as schema
from crm_core import models as m
from crm_core.bounces.models import SentKind, SentMessage
from crm_core.db import make_engine, make_session_factory
from crm_core.ingestion import services
from crm_core.ingestion.models import EventStatus, InboxEvent
from crm_core.people import api_keys
from crm_core.people.permissions import Actor
from tests.keyring import TEST_KEYRING
from tests.mail_provider_requests import (
    JSON,
    MAILGUN_KEY,
    SendGridSigner,
    basic,
    mailgun_event,
    mailgun_form,
    mailgun_route_fields,
    postmark_json,
    sendgrid_inbound,
)
from tests.processes import celery_worker, service_env, wait_until, web_app
from tests.provider_requests import provider_fixture
from tests.services import (
    REDIS_URL,
    postgres_reason,
    redis_reason,
    scratch_postgres_database,
    unavailable,
)
from tests.signed import signed_headers

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.slow]

SUPPORT = (
    "support@mg.example.com",
    "support@parse.example.com",
    "4f2c9d1e7b3a5c8d0e6f@inbound.postmarkapp.com",
)


@dataclass(frozen=True)
class Platform:
    base: str
    sessions: sessionmaker[Session]

    def source(self, name: str, provider: str, secret: str | None = None) -> str | None:
        with self.sessions.begin() as session:
            _, made = services.create_source(session, name=name, provider=provider, secret=secret)
        return made

    def post(self, source: str, body: bytes, headers: dict[str, str]) -> int:
        response = requests.post(
            f"{self.base}/webhooks/{source}", data=body, headers=headers, timeout=30
        )
        assert response.status_code in (200, 202), response.text
        event_id: int = response.json()["event_id"]
        return event_id

    def processed(self, event_id: int) -> InboxEvent:
        def done() -> InboxEvent | None:
            with self.sessions() as session:
                event = session.get(InboxEvent, event_id)
                if event is not None and event.status not in (
                    EventStatus.RECEIVED,
                    EventStatus.PROCESSING,
                ):
                    session.expunge(event)
                    return event
            return None

        event = wait_until(done, timeout=60, what=f"event {event_id} processed")
        assert event.status == EventStatus.PROCESSED, (event.status, event.error, event.errors)
        return event

    def download(self, activity_id: int) -> list[tuple[str, str, bytes]]:
        """Each attachment of an Activity as GET /api/attachments/<id> serves it."""
        with self.sessions.begin() as session:
            _, key = api_keys.create_api_key(
                session, actor=Actor.operator("tests"), name=uuid.uuid4().hex, scopes=("read",)
            )
        headers = {"Authorization": f"Bearer {key}"}
        shown = requests.get(
            f"{self.base}/api/activities/{activity_id}", headers=headers, timeout=30
        )
        assert shown.status_code == 200, shown.text
        files = []
        for attachment in shown.json()["attachments"]:
            got = requests.get(f"{self.base}{attachment['href']}", headers=headers, timeout=30)
            assert got.status_code == 200, got.text
            files.append((attachment["filename"], got.headers["Content-Type"], got.content))
        return files

    def email_activity(self, event_id: int) -> m.Activity:
        with self.sessions() as session:
            activity = session.scalars(
                select(m.Activity).where(
                    m.Activity.event_id == event_id,
                    m.Activity.type == m.ActivityType.EMAIL_RECEIVED,
                )
            ).one()
            session.expunge(activity)
            return activity


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    """One web app and one worker on a scratch PostgreSQL database, for the whole module."""
    for what, reason in (("PostgreSQL", postgres_reason()), ("Redis", redis_reason())):
        if reason:
            unavailable(what, reason)
    var = tmp_path_factory.mktemp("mail-providers-e2e")
    with scratch_postgres_database("crm_mail_providers_e2e") as url:
        schema.upgrade(url)
        env = service_env(
            CRM_DATABASE_URL=url,
            CRM_BROKER_URL=REDIS_URL,
            CRM_BROKER_KEY_PREFIX=f"e2e-{uuid.uuid4().hex}:",
            CRM_RATELIMIT_URL="memory://",
            CRM_SECRET_KEY="e2e-secret",
            CRM_VAR_DIR=str(var),
            CRM_SUPPORT_ADDRESSES=",".join(SUPPORT),
        )
        engine = make_engine(url, keyring=TEST_KEYRING)
        try:
            with (
                web_app(env) as base,
                celery_worker(env, queues="ingest", log_path=var / "worker.log"),
            ):
                yield Platform(base, make_session_factory(engine))
        finally:
            engine.dispose()


def _opened(platform: Platform, first: int) -> None:
    """The first message opened a case (processed before its reply is posted)."""
    opened = platform.processed(first)
    assert opened.outcome is not None
    assert opened.outcome["decision"] == "new_case"
    assert platform.email_activity(first).support_case_id is not None


def _threaded(platform: Platform, first: int, reply: int) -> m.Activity:
    """The reply is filed on the first message's case; the reply's activity."""
    message = platform.email_activity(first)
    threaded = platform.processed(reply)
    assert threaded.outcome is not None
    assert threaded.outcome["decision"] == "reply_to_case", threaded.outcome
    answer = platform.email_activity(reply)
    assert answer.support_case_id == message.support_case_id
    return answer


def test_mailgun_parsed_post_opens_a_case_and_a_raw_reply_threads_into_it(
    platform: Platform,
) -> None:
    platform.source("mailgun", "mailgun", MAILGUN_KEY)
    first_body, first_type = mailgun_form(
        mailgun_route_fields(),
        files={"attachment-1": ("invoice-2041.pdf", b"%PDF-1.4 2041", "application/pdf")},
    )
    first = platform.post("mailgun", first_body, {"Content-Type": first_type})
    _opened(platform, first)
    raw = (
        b"From: Alice Moreau <alice@example.net>\r\nTo: support@mg.example.com\r\n"
        b"Subject: Re: Invoice 2041 is wrong\r\n"
        b"Message-ID: <CAF2041reply.alice@mail.example.net>\r\n"
        b"In-Reply-To: <CAF2041invoice.alice@mail.example.net>\r\n"
        b"Date: Thu, 03 Dec 2026 11:40:00 +0100\r\n\r\n"
        b"Any news?\r\n\r\n> the total counts it twice\r\n"
    )
    reply_body, reply_type = mailgun_form(
        {
            "recipient": "support@mg.example.com",
            "body-mime": raw.decode(),
            "stripped-text": "Any news?",
        }
    )
    reply = platform.post("mailgun", reply_body, {"Content-Type": reply_type})
    answer = _threaded(platform, first, reply)
    assert answer.summary == "Re: Invoice 2041 is wrong: Any news?"
    message = platform.email_activity(first)
    assert platform.download(message.id) == [
        ("invoice-2041.pdf", "application/pdf", b"%PDF-1.4 2041")
    ]


def test_sendgrid_parsed_post_opens_a_case_and_a_raw_reply_threads_into_it(
    platform: Platform,
) -> None:
    credentials = platform.source("sendgrid", "sendgrid")
    assert credentials is not None
    first_body, content_type = sendgrid_inbound("inbound_parsed.multipart")
    reply_body, _ = sendgrid_inbound("inbound_raw.multipart")
    headers = {"Content-Type": content_type, **basic(credentials)}
    first = platform.post("sendgrid", first_body, headers)
    _opened(platform, first)
    reply = platform.post("sendgrid", reply_body, headers)
    _threaded(platform, first, reply)
    with platform.sessions() as session:
        case = session.get(m.SupportCase, platform.email_activity(first).support_case_id)
        assert case is not None
        assert case.subject == "Thé vert commandé"
    # SendGrid posting the same message again is the same delivery: one event.
    assert platform.post("sendgrid", first_body, headers) == first


def test_postmark_post_opens_a_case_a_reply_threads_and_the_same_mail_elsewhere_is_one(
    platform: Platform,
) -> None:
    credentials = platform.source("postmark", "postmark")
    assert credentials is not None
    headers = {"Content-Type": "application/json", **basic(credentials)}
    first = platform.post("postmark", postmark_json("inbound.json"), headers)
    _opened(platform, first)
    reply = platform.post("postmark", postmark_json("inbound_reply.json"), headers)
    answer = _threaded(platform, first, reply)
    assert answer.summary == "Re: Grinder arrived broken: A replacement would be great, thanks."
    photo = json.loads(postmark_json("inbound.json"))["Attachments"][0]
    assert platform.download(platform.email_activity(first).id) == [
        ("hopper.jpg", "image/jpeg", base64.b64decode(photo["Content"]))
    ]
    # The same message read from a mailbox too (here: posted raw by our own format) is filed once.
    secret = platform.source("mailbox", "standard")
    assert secret is not None
    raw = (
        b"From: Jonas Berg <jonas@example.net>\r\n"
        b"To: 4f2c9d1e7b3a5c8d0e6f@inbound.postmarkapp.com\r\n"
        b"Subject: Grinder arrived broken\r\nMessage-ID: <CAGjonas2077grinder@mail.example.net>\r\n"
        b"\r\nHi, the grinder arrived with a cracked hopper.\r\n"
    )
    sent = signed_headers(secret, raw, content_type="message/rfc822")
    response = requests.post(
        f"{platform.base}/webhooks/mailbox/emails", data=raw, headers=sent, timeout=30
    )
    assert response.status_code == 202, response.text
    same = platform.processed(response.json()["event_id"])
    assert same.outcome is not None
    assert same.outcome["decision"] == "duplicate"
    with platform.sessions() as session:
        cases = session.scalars(
            select(m.SupportCase.id).where(m.SupportCase.subject == "Grinder arrived broken")
        ).all()
    assert len(cases) == 1
    assert json.loads(postmark_json("inbound.json"))[
        "MessageID"
    ]  # Postmark's id is not the Message-ID


def test_a_bounce_from_each_provider_suppresses_its_address_and_marks_its_message(
    platform: Platform,
) -> None:
    signer = SendGridSigner()
    platform.source("mg-events", "mailgun", MAILGUN_KEY)
    sendgrid = platform.source("sg-events", "sendgrid")
    postmark = platform.source("pm-events", "postmark")
    assert sendgrid is not None
    assert postmark is not None
    with platform.sessions.begin() as session:
        services.set_source_public_key(session, name="sg-events", public_key=signer.public_key)
        for recipient, message_id, provider_id in (
            (
                "bounced@example.org",
                "20261203085300.1.C4F1E2D3B4A59687@mg.example.com",
                "<20261203085300.1.C4F1E2D3B4A59687@mg.example.com>",
            ),
            ("blocked@example.org", "sg-1@crm.example.com", "14c5d75ce94.dfd.64b469"),
            ("dropped@example.org", "sg-2@crm.example.com", "14c5d75ce95.dfd.64b469"),
            (
                "hard@example.org",
                "case-12@crm.example.com",
                "883953f4-6105-42a2-a16a-77a8eac79483",
            ),
        ):
            session.add(
                SentMessage(
                    message_id=message_id,
                    recipient=recipient,
                    kind=SentKind.CAMPAIGN,
                    provider_message_id=provider_id,
                )
            )
    batch = provider_fixture("sendgrid/event_batch.json")
    events = [
        platform.post("mg-events", mailgun_event("failed_permanent.json"), {"Content-Type": JSON}),
        platform.post("sg-events", batch, signer.headers(batch)),
        platform.post(
            "pm-events",
            postmark_json("bounce.json", Email="hard@example.org"),
            {"Content-Type": JSON, **basic(postmark)},
        ),
    ]
    for event_id in events:
        platform.processed(event_id)
    with platform.sessions() as session:
        suppressed = {
            row.email_normalized: (row.reason, row.provider)
            for row in session.scalars(select(m.Suppression))
        }
        marked = {row.recipient: row.report_outcome for row in session.scalars(select(SentMessage))}
    assert suppressed["bounced@example.org"] == ("bounced", "mailgun")
    assert suppressed["dropped@example.org"] == ("bounced", "sendgrid")
    assert suppressed["hard@example.org"] == ("bounced", "postmark")
    assert "blocked@example.org" not in suppressed  # transient: counted only
    assert marked == {
        "bounced@example.org": "bounced",
        "blocked@example.org": "bounced",
        "dropped@example.org": "bounced",
        "hard@example.org": "bounced",
    }
