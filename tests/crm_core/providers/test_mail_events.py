"""A provider's delivery events through the mail_events handler: the right address suppressed,
the right message marked, each report applied once however often it arrives."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from crm_core import models as m
from crm_core.bounces.models import SentKind, SentMessage
from crm_core.config import get_settings
from crm_core.errors import InvalidInput
from crm_core.ingestion import processing, single_event
from crm_core.ingestion.policy import IngestPolicy
from tests.factories import InboxEventFactory, SourceFactory
from tests.mail_provider_requests import mailgun_event, postmark_json
from tests.provider_requests import provider_fixture


def _sent(session: Session, recipient: str, message_id: str, provider_id: str) -> SentMessage:
    sent = SentMessage(
        message_id=message_id,
        recipient=recipient,
        kind=SentKind.CAMPAIGN,
        provider_message_id=provider_id,
    )
    session.add(sent)
    session.flush()
    return sent


def _run(session: Session, source: m.Source, body: bytes, topic: str) -> m.InboxEvent:
    event = InboxEventFactory(source=source, kind="mail_events", topic=topic, body=body)
    assert processing.claim_event(session, event_id=event.id)
    single_event.run_event(
        session, event_id=event.id, policy=IngestPolicy.from_settings(get_settings())
    )
    return event


def _suppressed(session: Session, email: str) -> m.Suppression | None:
    query = select(m.Suppression).where(m.Suppression.email_normalized == email)
    return session.scalars(query).first()


def test_a_mailgun_permanent_failure_suppresses_and_marks_the_message(session: Session) -> None:
    sent = _sent(
        session,
        "bounced@example.org",
        "20261203085300.1.C4F1E2D3B4A59687@mg.example.com",
        "<20261203085300.1.C4F1E2D3B4A59687@mg.example.com>",
    )
    other = _sent(session, "someone@example.org", "other@mg.example.com", "<other@mg.example.com>")
    source = SourceFactory(provider="mailgun")
    event = _run(session, source, mailgun_event("failed_permanent.json"), "failed")
    suppression = _suppressed(session, "bounced@example.org")
    assert suppression is not None
    assert (suppression.reason, suppression.provider) == ("bounced", "mailgun")
    assert (sent.report_outcome, other.report_outcome) == ("bounced", None)
    assert event.outcome == {
        "reports": [
            {
                "id": "G9Bn5sl1TC6nu79C8C0bwg",
                "recipient": "bounced@example.org",
                "outcome": "bounced",
                "permanent": True,
            }
        ]
    }
    # The same report in another post (Mailgun retrying with a new token) changes nothing.
    _run(session, source, mailgun_event("failed_permanent.json"), "failed")
    count = (
        select(func.count())
        .select_from(m.Activity)
        .where(m.Activity.type == m.ActivityType.DELIVERY_REPORTED)
    )
    assert session.scalar(count) == 1


def test_a_mailgun_temporary_failure_only_counts(session: Session) -> None:
    _sent(
        session,
        "full@example.org",
        "20261203085301.1.D5A2F3E4C5B6A798@mg.example.com",
        "<20261203085301.1.D5A2F3E4C5B6A798@mg.example.com>",
    )
    _run(
        session, SourceFactory(provider="mailgun"), mailgun_event("failed_temporary.json"), "failed"
    )
    assert _suppressed(session, "full@example.org") is None


def test_a_sendgrid_batch_applies_each_event_to_its_own_message(session: Session) -> None:
    events = json.loads(provider_fixture("sendgrid/event_batch.json"))
    sent = {
        event["email"]: _sent(
            session,
            event["email"],
            f"{event['sg_event_id']}@crm.example.com",
            event["sg_message_id"].split(".filter", 1)[0],
        )
        for event in events
    }
    _run(
        session, SourceFactory(provider="sendgrid"), json.dumps(events).encode(), "delivery_events"
    )
    outcomes = {email: row.report_outcome for email, row in sent.items()}
    assert outcomes == {
        "bounced@example.org": "bounced",
        "blocked@example.org": "bounced",
        "dropped@example.org": "bounced",
        "spam@example.org": "complained",
        "leaving@example.org": "unsubscribed",
        "group.leaving@example.org": "unsubscribed",
        "reader@example.org": None,
    }
    reasons = {
        email: (found.reason if (found := _suppressed(session, email)) else None) for email in sent
    }
    assert reasons == {
        "bounced@example.org": "bounced",
        "blocked@example.org": None,  # transient: counted, not yet suppressed
        "dropped@example.org": "bounced",
        "spam@example.org": "complained",
        "leaving@example.org": "unsubscribed",
        "group.leaving@example.org": "unsubscribed",
        "reader@example.org": None,
    }


def test_a_postmark_hard_bounce_suppresses_the_address_of_its_message(session: Session) -> None:
    sent = _sent(
        session,
        "bounced@example.org",
        "case-12@crm.example.com",
        "883953f4-6105-42a2-a16a-77a8eac79483",
    )
    _run(session, SourceFactory(provider="postmark"), postmark_json("bounce.json"), "Bounce")
    suppression = _suppressed(session, "bounced@example.org")
    assert suppression is not None
    assert (suppression.reason, suppression.provider, sent.report_outcome) == (
        "bounced",
        "postmark",
        "bounced",
    )


def test_a_report_about_mail_we_did_not_send_suppresses_nobody(session: Session) -> None:
    _run(
        session,
        SourceFactory(provider="postmark"),
        postmark_json("spam_complaint.json"),
        "SpamComplaint",
    )
    assert _suppressed(session, "annoyed@example.org") is None


def test_mail_events_from_a_standard_source_are_refused_by_name(session: Session) -> None:
    source = SourceFactory(provider="standard")
    with pytest.raises(InvalidInput) as refused:
        _run(session, source, b"[]", "mail_events")
    assert refused.value.errors[0].loc == ("kind",)
