"""Tickets: one case per (source, external id), SLA due times, status and comment Activities."""

from __future__ import annotations

import dataclasses
import datetime as dt

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from crm_core import models as m
from crm_core.ingestion.commands import ticket_command
from crm_core.payloads.schemas import TicketPayload
from crm_core.support.commands import TicketCommand
from crm_core.support.services import DEFAULT_SLA_HOURS, upsert_case_from_ticket
from tests.factories import ContactFactory, SourceFactory


def ticket(**overrides: object) -> TicketCommand:
    data: dict[str, object] = {
        "external_id": "T-9",
        "subject": "Printer on fire",
        "description": "It is on fire.",
        "status": "open",
        "priority": "urgent",
        "requester": {"email": "it@example.com", "name": "IT"},
        "comments": [
            {
                "author_email": "it@example.com",
                "body": "Still burning",
                "created_at": "2026-11-01T10:00:00",
            },
        ],
    }
    data.update(overrides)
    return ticket_command(TicketPayload.model_validate(data))


def upsert(session: Session, source: m.Source, requester: m.Contact, payload: TicketCommand):
    return upsert_case_from_ticket(
        session,
        source_id=source.id,
        event_id=None,
        requester=requester,
        ticket=payload,
        sla_hours=DEFAULT_SLA_HOURS,
    )


def types(session: Session) -> list[str]:
    return list(session.scalars(select(m.Activity.type).order_by(m.Activity.id)))


def test_a_new_ticket_opens_a_case_with_its_sla(session: Session) -> None:
    source, requester = SourceFactory(), ContactFactory()
    upsert(session, source, requester, ticket())
    case = session.scalars(select(m.SupportCase)).one()
    assert (case.status, case.priority, case.contact_id) == ("open", "urgent", requester.id)
    assert case.first_response_due_at - case.created_at == dt.timedelta(hours=1)
    assert types(session) == ["case_opened", "case_comment"]
    comment = session.scalars(select(m.Activity).where(m.Activity.type == "case_comment")).one()
    assert comment.occurred_at == dt.datetime(2026, 11, 1, 10, tzinfo=dt.UTC)


def test_redelivery_adds_nothing_and_a_status_change_is_recorded(session: Session) -> None:
    source, requester = SourceFactory(), ContactFactory()
    upsert(session, source, requester, ticket())
    upsert(session, source, requester, ticket())
    assert types(session) == ["case_opened", "case_comment"]
    upsert(session, source, requester, ticket(status="solved", priority="medium"))
    case = session.scalars(select(m.SupportCase)).one()
    assert (case.status, case.priority) == ("resolved", "normal")
    assert case.resolved_at is not None
    assert types(session) == ["case_opened", "case_comment", "case_status_changed"]


def test_new_comments_on_a_known_ticket_are_added_once(session: Session) -> None:
    source, requester = SourceFactory(), ContactFactory()
    upsert(session, source, requester, ticket())
    more = (
        ticket().comments + ticket(comments=[{"body": "Now smoking", "external_id": "c2"}]).comments
    )
    for _ in range(2):
        upsert(session, source, requester, ticket(comments=[dataclasses.asdict(c) for c in more]))
    count = select(func.count()).where(m.Activity.type == "case_comment")
    assert session.scalar(count) == 2


def test_priority_sets_the_first_response_due_time(session: Session) -> None:
    source, requester = SourceFactory(), ContactFactory()
    upsert(session, source, requester, ticket(external_id="low", priority="low", comments=[]))
    case = session.scalars(select(m.SupportCase)).one()
    assert case.first_response_due_at - case.created_at == dt.timedelta(hours=72)
