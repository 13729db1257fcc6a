"""Support cases from help-desk tickets: upserted by (source, external id), with SLA times."""

from __future__ import annotations

import datetime as dt
import hashlib

from sqlalchemy import select
from sqlalchemy.orm import Session

from crm_core.activities.models import Activity, ActivityType, Direction
from crm_core.activities.stale import is_stale, iso, latest, record_stale_update
from crm_core.base.entities import EntityType, ExternalRef
from crm_core.base.touched import Touched
from crm_core.customers.models import Contact
from crm_core.db import insert_or_lock, utcnow
from crm_core.support.commands import TicketCommand, TicketCommentCommand
from crm_core.support.lifecycle import case_opened, change_case_status
from crm_core.support.models import CaseChannel, CasePriority, CaseStatus, SupportCase
from crm_core.support.sla import SlaPolicy

# Help desks name their states differently; these are ours.
TICKET_STATUS = {
    "new": CaseStatus.NEW,
    "open": CaseStatus.OPEN,
    "pending": CaseStatus.PENDING,
    "on_hold": CaseStatus.PENDING,
    "solved": CaseStatus.RESOLVED,
    "resolved": CaseStatus.RESOLVED,
    "closed": CaseStatus.CLOSED,
}
TICKET_PRIORITY = {
    "low": CasePriority.LOW,
    "normal": CasePriority.NORMAL,
    "medium": CasePriority.NORMAL,
    "high": CasePriority.HIGH,
    "urgent": CasePriority.URGENT,
}
CLOSED_STATUSES = (CaseStatus.RESOLVED, CaseStatus.CLOSED)


def upsert_case_from_ticket(
    session: Session,
    *,
    source_id: int,
    event_id: int | None,
    requester: Contact,
    ticket: TicketCommand,
    sla: SlaPolicy,
) -> Touched:
    """Create or update the case of ``ticket``; status changes and comments become Activities.

    The SLA clocks start when the help desk opened the ticket. An update older than
    the stored one (by the help desk's ``updated_at``) changes no field and is
    recorded as a ``stale_update`` Activity; the comments it carries are still
    recorded (each once), since they happened whatever order they arrive in.
    """
    now = utcnow()
    opened_at = min(ticket.opened_at, now) if ticket.opened_at else now
    priority = TICKET_PRIORITY[ticket.priority]
    status = TICKET_STATUS[ticket.status]
    case, created = insert_or_lock(
        session,
        SupportCase,
        key={"source_id": source_id, "external_id": ticket.external_id},
        values={
            "customer_id": requester.customer_id,
            "contact_id": requester.id,
            "subject": ticket.subject,
            "description": ticket.description,
            "status": status,
            "priority": priority,
            "channel": CaseChannel.WEBHOOK,
            "opened_at": opened_at,
            "source_updated_at": ticket.updated_at,
            "first_response_due_at": sla.first_response_due(priority, opened_at=opened_at),
            "resolution_due_at": sla.resolution_due(priority, opened_at=opened_at),
            "resolved_at": (ticket.updated_at or now) if status in CLOSED_STATUSES else None,
            "created_at": now,
            "updated_at": now,
        },
    )
    touched = Touched()
    for entity_type, entity_id in (
        (EntityType.SUPPORT_CASE, case.id),
        (EntityType.CUSTOMER, case.customer_id),
        (EntityType.CONTACT, requester.id),
    ):
        touched.add(entity_type, entity_id)
    if created:
        touched.add(EntityType.ACTIVITY, _opened(session, case, event_id).id)
    elif is_stale(case.source_updated_at, ticket.updated_at):
        touched.add(EntityType.ACTIVITY, _stale(session, case, ticket, event_id))
    else:
        touched.extend(_update(session, case, ticket, sla, event_id))
    for index, comment in enumerate(ticket.comments):
        activity = _comment(session, case, comment, index=index, event_id=event_id)
        if activity is not None:
            touched.add(EntityType.ACTIVITY, activity.id)
        if comment.by_agent and comment.public:
            _responded(case, comment.created_at or ticket.updated_at or now)
    return touched


def _responded(case: SupportCase, at: dt.datetime) -> None:
    """A public reply by the help desk's staff keeps the first-response promise (the earliest
    such reply, whatever order they arrive in)."""
    current = case.first_responded_at
    if current is None or at < (current if current.tzinfo else current.replace(tzinfo=dt.UTC)):
        case.first_responded_at = at


def _stale(session: Session, case: SupportCase, ticket: TicketCommand, event_id: int | None) -> int:
    return record_stale_update(
        session,
        event_id=event_id,
        summary=f"Case #{case.id}: an update older than the stored one, ignored",
        details={
            "updated_at": iso(ticket.updated_at),
            "stored_updated_at": iso(case.source_updated_at),
            "status": ticket.status,
            "priority": ticket.priority,
        },
        customer_id=case.customer_id,
        contact_id=case.contact_id,
        link="support_case_id",
        record_id=case.id,
    )


def _activity(case: SupportCase, kind: ActivityType, summary: str, **fields: object) -> Activity:
    return Activity(
        type=kind,
        summary=summary,
        customer_id=case.customer_id,
        contact_id=case.contact_id,
        support_case_id=case.id,
        **fields,
    )


def _opened(session: Session, case: SupportCase, event_id: int | None) -> Activity:
    return case_opened(
        session,
        case,
        summary=f"Case #{case.id} opened: {case.subject}",
        details={"priority": case.priority, "status": case.status},
        event_id=event_id,
    )


def _update(
    session: Session,
    case: SupportCase,
    ticket: TicketCommand,
    sla: SlaPolicy,
    event_id: int | None,
) -> Touched:
    """Apply a later ticket update: a status change is an Activity, a priority change moves
    the due times not yet met."""
    touched = Touched()
    case.source_updated_at = latest(case.source_updated_at, ticket.updated_at)
    case.subject = ticket.subject
    if ticket.description:
        case.description = ticket.description
    if ticket.opened_at is not None and case.opened_at is None:
        case.opened_at = ticket.opened_at
    priority = TICKET_PRIORITY[ticket.priority]
    if priority != case.priority:
        case.priority = priority
        sla.apply(case, opened_at=case.opened_at or case.created_at or utcnow())
    activity = change_case_status(
        session, case, TICKET_STATUS[ticket.status], now=ticket.updated_at, event_id=event_id
    )
    if activity is not None:
        touched.add(EntityType.ACTIVITY, activity.id)
    return touched


def comment_key(case: SupportCase, comment: TicketCommentCommand, *, index: int) -> str:
    """A stable identity for a comment, so a redelivered ticket adds no duplicates."""
    if comment.external_id:
        key = f"comment:{case.id}:{comment.external_id}"
    else:
        created = comment.created_at.isoformat() if comment.created_at else f"#{index}"
        content = f"{comment.author_email}|{created}|{comment.body}"
        key = f"comment:{case.id}:{hashlib.sha256(content.encode()).hexdigest()}"
    # External ids may be long; the reference column holds 255 characters.
    return key if len(key) <= 255 else "comment:" + hashlib.sha256(key.encode()).hexdigest()


def _comment(
    session: Session,
    case: SupportCase,
    comment: TicketCommentCommand,
    *,
    index: int,
    event_id: int | None,
) -> Activity | None:
    """Record ``comment`` once, keyed through an external reference."""
    assert case.source_id is not None
    key = comment_key(case, comment, index=index)
    exists = session.scalar(
        select(ExternalRef.id).where(
            ExternalRef.source_id == case.source_id,
            ExternalRef.entity_type == EntityType.ACTIVITY,
            ExternalRef.external_id == key,
        )
    )
    if exists is not None:
        return None
    activity = _activity(
        case,
        ActivityType.CASE_COMMENT,
        comment.body[:200],
        direction=Direction.OUTBOUND if comment.by_agent else Direction.INBOUND,
        occurred_at=comment.created_at or utcnow(),
        details={
            "author_email": comment.author_email,
            "author_name": comment.author_name,
            "by_agent": comment.by_agent,
            "public": comment.public,
            "body": comment.body,
        },
        event_id=event_id,
    )
    session.add(activity)
    session.flush()
    session.add(
        ExternalRef(
            source_id=case.source_id,
            entity_type=EntityType.ACTIVITY,
            external_id=key,
            entity_id=activity.id,
        )
    )
    return activity
