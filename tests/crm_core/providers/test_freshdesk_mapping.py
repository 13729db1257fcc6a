"""Freshdesk's automation webhook becomes a support case, its clock started at Freshdesk."""

from __future__ import annotations

import copy
import datetime as dt

from sqlalchemy import select
from sqlalchemy.orm import Session

from crm_core import models as m
from crm_core.config import get_settings
from tests.crm_core.providers.mapped_events import fixture, linked, run_provider_event
from tests.factories import SourceFactory

TICKET = fixture("freshdesk", "ticket_created.json")


def run(session: Session, document: dict, **fields: object) -> m.InboxEvent:
    return run_provider_event(
        session,
        provider="freshdesk",
        kind="tickets",
        topic="automation",
        document=document,
        **fields,
    )


def utc(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def test_a_created_ticket_is_a_case_of_its_requester(session: Session) -> None:
    event = run(session, TICKET)
    assert event.status == "processed", event.errors
    case = session.get(m.SupportCase, linked(event, "support_case")[0])
    assert (case.external_id, case.subject, case.status) == (
        "2061",
        "Invoice 1042 shows the wrong VAT number",
        "open",
    )
    assert case.description.startswith("Hello, our VAT number")
    assert "<div>" not in case.description
    requester = session.get(m.Contact, case.contact_id)
    assert requester.email_normalized == "grace.hopper@example.org"
    hours = get_settings().sla_first_response_hours[case.priority]
    opened = dt.datetime(2026, 11, 30, 14, 58, 21, tzinfo=dt.UTC)
    assert utc(case.first_response_due_at) == opened + dt.timedelta(hours=hours)


def test_a_later_rule_moves_the_case(session: Session) -> None:
    source = SourceFactory(provider="freshdesk")
    run(session, TICKET, source=source)
    resolved = copy.deepcopy(TICKET)
    resolved["freshdesk_webhook"]["ticket_status"] = "Resolved"
    event = run(session, resolved, source=source)
    assert event.status == "processed", event.errors
    case = session.scalars(select(m.SupportCase)).one()
    assert case.status == "resolved"


def test_a_ticket_without_a_requester_email_names_freshdesk_s_field(session: Session) -> None:
    document = copy.deepcopy(TICKET)
    document["freshdesk_webhook"]["ticket_requester_email"] = ""
    event = run(session, document)
    assert event.status == "invalid"
    assert [error["field"] for error in event.errors] == [
        "freshdesk_webhook.ticket_requester_email"
    ]


def test_the_api_s_numbers_are_statuses_and_priorities(session: Session) -> None:
    document = copy.deepcopy(TICKET)
    document["freshdesk_webhook"].update(ticket_status=4, ticket_priority=4)
    event = run(session, document)
    assert event.status == "processed", event.errors
    case = session.scalars(select(m.SupportCase)).one()
    assert (case.status, case.priority) == ("resolved", "urgent")
    hours = get_settings().sla_resolution_hours["urgent"]
    opened = dt.datetime(2026, 11, 30, 14, 58, 21, tzinfo=dt.UTC)
    assert utc(case.resolution_due_at) == opened + dt.timedelta(hours=hours)


def test_an_older_rule_webhook_after_a_newer_one_changes_nothing(session: Session) -> None:
    source = SourceFactory(provider="freshdesk")
    resolved = copy.deepcopy(TICKET)
    resolved["freshdesk_webhook"].update(
        ticket_status="Resolved", ticket_updated_at="2026-12-01T10:00:00+00:00"
    )
    run(session, resolved, source=source)
    older = copy.deepcopy(TICKET)
    older["freshdesk_webhook"]["ticket_updated_at"] = "2026-11-30T14:58:21+00:00"
    event = run(session, older, source=source)
    assert event.status == "processed", event.errors
    case = session.scalars(select(m.SupportCase)).one()
    assert case.status == "resolved"
    assert linked(event, "activity")
    stale = session.scalars(select(m.Activity).where(m.Activity.type == "stale_update")).one()
    assert stale.support_case_id == case.id
