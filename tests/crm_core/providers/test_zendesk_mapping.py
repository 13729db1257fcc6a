"""Zendesk's ticket events become one support case: its clock started at Zendesk, answered
by an agent's public comment, its due times moved by a priority change."""

from __future__ import annotations

import copy
import datetime as dt

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from crm_core import models as m
from crm_core.config import get_settings
from crm_core.followups.rules import CaseFirstResponseOverdue
from crm_core.followups.services import due_subjects
from tests.crm_core.providers.mapped_events import fixture, linked, run_provider_event
from tests.factories import SourceFactory

EVENT = "zen:event-type:ticket."
CREATED = fixture("zendesk", "ticket_created.json")
PRIORITY = fixture("zendesk", "ticket_priority_changed.json")
AGENT_COMMENT = fixture("zendesk", "ticket_comment_added.json")
REQUESTER_COMMENT = fixture("zendesk", "ticket_comment_added_by_requester.json")
SOLVED = fixture("zendesk", "ticket_status_changed.json")
OPENED = dt.datetime(2026, 11, 30, 9, 12, 7, tzinfo=dt.UTC)


def run(session: Session, document: dict, source: m.Source) -> m.InboxEvent:
    return run_provider_event(
        session,
        provider="zendesk",
        kind="tickets",
        topic=document["type"],
        document=document,
        source=source,
    )


def utc(value: dt.datetime | None) -> dt.datetime | None:
    return value.replace(tzinfo=dt.UTC) if value and not value.tzinfo else value


def hours(table: str, priority: str) -> dt.timedelta:
    return dt.timedelta(hours=getattr(get_settings(), table)[priority])


def test_a_created_ticket_is_a_case_whose_clocks_start_at_zendesk(session: Session) -> None:
    event = run(session, CREATED, SourceFactory(provider="zendesk"))
    assert event.status == "processed", event.errors
    case = session.get(m.SupportCase, linked(event, "support_case")[0])
    assert (case.external_id, case.subject, case.status, case.priority) == (
        "5158",
        "Cannot log in to the mobile app",
        "new",
        "normal",
    )
    assert utc(case.opened_at) == OPENED
    assert utc(case.first_response_due_at) == OPENED + hours("sla_first_response_hours", "normal")
    assert utc(case.resolution_due_at) == OPENED + hours("sla_resolution_hours", "normal")
    assert case.first_responded_at is None
    # Zendesk names the requester only by id: the contact is the source's user of that id.
    requester = session.get(m.Contact, case.contact_id)
    assert requester.email_normalized is None
    ref = session.scalars(select(m.ExternalRef).where(m.ExternalRef.entity_type == "contact")).one()
    assert (ref.external_id, ref.entity_id) == ("8447388090101", requester.id)


def test_a_priority_change_moves_the_due_times_from_the_opening(session: Session) -> None:
    source = SourceFactory(provider="zendesk")
    run(session, CREATED, source)
    event = run(session, PRIORITY, source)
    assert event.status == "processed", event.errors
    case = session.scalars(select(m.SupportCase)).one()
    assert case.priority == "high"
    assert utc(case.first_response_due_at) == OPENED + hours("sla_first_response_hours", "high")
    assert utc(case.resolution_due_at) == OPENED + hours("sla_resolution_hours", "high")


def test_an_agent_s_public_comment_is_the_first_response(session: Session) -> None:
    source = SourceFactory(provider="zendesk")
    run(session, CREATED, source)
    event = run(session, AGENT_COMMENT, source)
    assert event.status == "processed", event.errors
    case = session.scalars(select(m.SupportCase)).one()
    assert utc(case.first_responded_at) == dt.datetime(
        2026, 11, 30, 9, 25, 30, 123456, tzinfo=dt.UTC
    )
    comment = session.scalars(
        select(m.Activity).where(m.Activity.type == m.ActivityType.CASE_COMMENT)
    ).one()
    assert comment.direction == "outbound"
    assert comment.details["author_name"] == "Sam Agent"
    assert comment.details["by_agent"] is True
    # Answered: the overdue rule passes it by, however late it is now.
    rule = CaseFirstResponseOverdue(name="late", kind="case_first_response_overdue", after="1h")
    assert due_subjects(session, rule, now=OPENED + dt.timedelta(days=30)) == []
    # The same event again adds nothing.
    run(session, AGENT_COMMENT, source)
    assert (
        len(session.scalars(select(m.Activity.id).where(m.Activity.type == "case_comment")).all())
        == 1
    )


@pytest.mark.parametrize(
    ("document", "private"),
    [(REQUESTER_COMMENT, False), (AGENT_COMMENT, True)],
    ids=["the requester's comment", "an agent's private note"],
)
def test_other_comments_are_no_response(session: Session, document: dict, private: bool) -> None:
    source = SourceFactory(provider="zendesk")
    run(session, CREATED, source)
    document = copy.deepcopy(document)
    if private:
        document["event"]["comment"]["is_public"] = False
    event = run(session, document, source)
    assert event.status == "processed", event.errors
    case = session.scalars(select(m.SupportCase)).one()
    assert case.first_responded_at is None
    rule = CaseFirstResponseOverdue(name="late", kind="case_first_response_overdue", after="1h")
    assert due_subjects(session, rule, now=OPENED + dt.timedelta(days=30)) == [case.id]


def test_the_requester_s_comment_names_the_requester(session: Session) -> None:
    source = SourceFactory(provider="zendesk")
    run(session, CREATED, source)
    run(session, REQUESTER_COMMENT, source)
    case = session.scalars(select(m.SupportCase)).one()
    assert session.get(m.Contact, case.contact_id).full_name == "Ada Lovelace"


def test_a_solved_ticket_is_resolved_when_zendesk_solved_it(session: Session) -> None:
    source = SourceFactory(provider="zendesk")
    for document in (CREATED, PRIORITY, AGENT_COMMENT, SOLVED):
        assert run(session, document, source).status == "processed"
    case = session.scalars(select(m.SupportCase)).one()
    assert case.status == "resolved"
    assert utc(case.resolved_at) == dt.datetime(2026, 11, 30, 9, 41, 12, tzinfo=dt.UTC)
    changes = session.scalars(
        select(m.Activity.details)
        .where(m.Activity.type == "case_status_changed")
        .order_by(m.Activity.id)
    ).all()
    assert changes[-1] == {"from": "open", "to": "resolved"}


def test_a_ticket_without_an_id_names_zendesk_s_field(session: Session) -> None:
    document = copy.deepcopy(CREATED)
    del document["detail"]["id"]
    event = run(session, document, SourceFactory(provider="zendesk"))
    assert event.status == "invalid"
    assert [error["field"] for error in event.errors] == ["detail.id"]
