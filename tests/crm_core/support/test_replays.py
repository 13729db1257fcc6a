"""Mail without a Message-ID is known by its bytes: a replay opens no second case, sends no
second acknowledgement."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from crm_core import models as m
from crm_core.ingestion import processing, single_event
from crm_core.ingestion.policy import IngestPolicy
from crm_core.mail import parse_rfc822
from crm_core.mail.keys import message_key
from tests.crm_core.support.test_auto_ack import receive
from tests.factories import InboxEventFactory

NO_ID = (
    b"From: ann@client.example\r\nTo: support@acme.test\r\nSubject: Broken\r\n"
    b"Date: Sun, 15 Mar 2026 10:00:00 +0000\r\n\r\nIt broke.\r\n"
)


def count(session: Session, model: type, *where: object) -> int:
    return session.scalar(select(func.count()).select_from(model).where(*where)) or 0


def test_the_same_message_without_message_id_twice_is_one_case_and_one_ack(
    session: Session,
) -> None:
    first = receive(session, NO_ID)
    second = receive(session, NO_ID)
    assert (first.decision, second.decision) == ("new_case", "duplicate")
    assert count(session, m.SupportCase) == 1
    assert count(session, m.Activity, m.Activity.type == "email_sent") == 1
    activity = session.scalars(select(m.Activity).where(m.Activity.type == "email_received")).one()
    assert (activity.message_id, activity.message_key) == (None, message_key(NO_ID))


def test_a_redelivery_with_other_trace_fields_and_line_ends_is_the_same_message() -> None:
    redelivered = (
        b"Received: from mx2.acme.test by imap.acme.test; Mon, 16 Mar 2026 10:00:00 +0000\n"
        b"Delivered-To: support@acme.test\n" + NO_ID.replace(b"\r\n", b"\n")
    )
    assert message_key(redelivered) == message_key(NO_ID)
    assert parse_rfc822(redelivered).message_key == parse_rfc822(NO_ID).message_key
    other = NO_ID.replace(b"It broke.", b"It broke again.")
    assert message_key(other) != message_key(NO_ID)


def test_two_different_messages_without_message_id_are_two_cases(session: Session) -> None:
    receive(session, NO_ID)
    outcome = receive(session, NO_ID.replace(b"It broke.", b"Still broken."))
    assert outcome.decision == "new_case"
    assert count(session, m.SupportCase) == 2


@pytest.mark.parametrize("form", ["rfc822", "json"])
def test_the_same_e_mail_posted_twice_by_webhook_opens_one_case(
    session: Session, monkeypatch: pytest.MonkeyPatch, form: str
) -> None:
    from crm_core.config import get_settings

    monkeypatch.setattr(get_settings(), "support_addresses", frozenset({"support@acme.test"}))
    if form == "rfc822":
        body, content_type = NO_ID, "message/rfc822"
    else:
        doc = {"from": "ann@client.example", "to": ["support@acme.test"], "subject": "Broken"}
        body, content_type = json.dumps(doc).encode(), "application/json"
    decisions = []
    # Two deliveries under two webhook ids, as a sender that retries with a new id would.
    for _ in range(2):
        event = InboxEventFactory(kind="emails", body=body, content_type=content_type)
        assert processing.claim_event(session, event_id=event.id)
        single_event.run_event(
            session, event_id=event.id, policy=IngestPolicy.from_settings(get_settings())
        )
        decisions.append(event.outcome["decision"])
    assert decisions == ["new_case", "duplicate"]
    assert count(session, m.SupportCase) == 1
