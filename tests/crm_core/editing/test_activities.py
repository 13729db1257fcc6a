"""Calls, meetings and notes logged by people: on the right customer's timeline, with an author."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from crm_core.editing import activities
from crm_core.editing.records import RecordNotFound
from crm_core.errors import InvalidInput
from crm_core.people.models import AuditEntry
from crm_core.people.permissions import Actor, PermissionDenied
from tests.factories import ContactFactory, OpportunityFactory, SupportCaseFactory

AGENT = Actor.for_user(user_id=1, email="agent@example.com", role="agent")


def test_a_call_on_a_contact_joins_its_customers_timeline(session: Session) -> None:
    contact = ContactFactory()
    activity = activities.log_activity(
        session,
        actor=AGENT,
        document={
            "type": "call",
            "summary": "Renewal call",
            "body": "Wants 40 seats.",
            "direction": "outbound",
            "duration_minutes": 25,
            "occurred_at": "2026-12-01T10:00:00",
            "contact_id": contact.id,
        },
    )
    assert activity.customer_id == contact.customer_id
    assert activity.occurred_at == dt.datetime(2026, 12, 1, 10, tzinfo=dt.UTC)
    assert activity.details == {
        "author": "user:agent@example.com",
        "body": "Wants 40 seats.",
        "duration_minutes": 25,
    }
    entry = session.scalars(select(AuditEntry).where(AuditEntry.entity == "activity")).one()
    assert entry.entity_id == activity.id
    assert entry.changes["type"] == {"before": None, "after": "call"}


def test_a_note_on_a_case_is_internal(session: Session) -> None:
    case = SupportCaseFactory()
    note = activities.log_activity(
        session,
        actor=AGENT,
        document={"type": "note", "summary": "Checked logs", "support_case_id": case.id},
    )
    assert (note.direction, note.customer_id, note.support_case_id) == (
        "internal",
        case.customer_id,
        case.id,
    )


def test_links_must_exist_and_agree(session: Session) -> None:
    contact = ContactFactory()
    elsewhere = OpportunityFactory()
    with pytest.raises(InvalidInput) as refused:
        activities.log_activity(
            session,
            actor=AGENT,
            document={
                "type": "meeting",
                "summary": "x",
                "contact_id": contact.id,
                "opportunity_id": elsewhere.id,
            },
        )
    assert {e.field for e in refused.value.errors} == {"contact_id", "opportunity_id"}
    with pytest.raises(InvalidInput, match="customer_id: or another link is required"):
        activities.log_activity(session, actor=AGENT, document={"type": "note", "summary": "x"})
    with pytest.raises(RecordNotFound):
        activities.log_activity(
            session, actor=AGENT, document={"type": "note", "summary": "x", "customer_id": 999_999}
        )


def test_bad_documents_and_readers_are_refused(session: Session) -> None:
    with pytest.raises(InvalidInput) as refused:
        activities.log_activity(
            session,
            actor=AGENT,
            document={"type": "email_sent", "summary": "", "duration_minutes": -1},
        )
    assert {e.field for e in refused.value.errors} == {"type", "summary", "duration_minutes"}
    reader = Actor.for_key(key_id=1, name="r", scopes=["read"])
    with pytest.raises(PermissionDenied):
        activities.log_activity(session, actor=reader, document={"type": "note", "summary": "x"})
