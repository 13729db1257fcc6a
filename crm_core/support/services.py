"""Support cases from help-desk tickets: upserted by (source, external id), with SLA times."""

from __future__ import annotations

import datetime as dt
import hashlib

from sqlalchemy import select
from sqlalchemy.orm import Session

from crm_core.activities.models import Activity, ActivityType, Direction
from crm_core.base.entities import EntityType, ExternalRef
from crm_core.base.touched import Touched
from crm_core.customers.models import Contact
from crm_core.db import insert_or_lock, utcnow
from crm_core.support.commands import TicketCommand, TicketCommentCommand
from crm_core.support.models import CaseChannel, CasePriority, CaseStatus, SupportCase

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
DEFAULT_SLA_HOURS = {"urgent": 1.0, "high": 4.0, "normal": 24.0, "low": 72.0}


def first_response_due(
    priority: str, *, opened_at: dt.datetime, sla_hours: dict[str, float]
) -> dt.datetime:
    """When the first response to a case of ``priority`` opened at ``opened_at`` is due."""
    hours = sla_hours.get(priority, DEFAULT_SLA_HOURS[CasePriority.NORMAL])
    return opened_at + dt.timedelta(hours=hours)


def upsert_case_from_ticket(
    session: Session,
    *,
    source_id: int,
    event_id: int | None,
    requester: Contact,
    ticket: TicketCommand,
    sla_hours: dict[str, float],
) -> Touched:
    """Create or update the case of ``ticket``; status changes and comments become Activities."""
    now = utcnow()
    opened_at = min(ticket.opened_at, now) if ticket.opened_at else now
    priority = TICKET_PRIORITY[ticket.priority]
    case, created = insert_or_lock(
        session,
        SupportCase,
        key={"source_id": source_id, "external_id": ticket.external_id},
        values={
            "customer_id": requester.customer_id,
            "contact_id": requester.id,
            "subject": ticket.subject,
            "description": ticket.description,
            "status": TICKET_STATUS[ticket.status],
            "priority": priority,
            "channel": CaseChannel.WEBHOOK,
            "first_response_due_at": first_response_due(
                priority, opened_at=opened_at, sla_hours=sla_hours
            ),
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
    else:
        touched.extend(_update(session, case, ticket, priority, event_id))
    for index, comment in enumerate(ticket.comments):
        activity = _comment(session, case, comment, index=index, event_id=event_id)
        if activity is not None:
            touched.add(EntityType.ACTIVITY, activity.id)
    return touched


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
    activity = _activity(
        case,
        ActivityType.CASE_OPENED,
        f"Case #{case.id} opened: {case.subject}",
        direction=Direction.INBOUND,
        details={"priority": case.priority, "status": case.status},
        event_id=event_id,
    )
    session.add(activity)
    session.flush()
    return activity


def _update(
    session: Session,
    case: SupportCase,
    ticket: TicketCommand,
    priority: str,
    event_id: int | None,
) -> Touched:
    """Apply a later ticket update; a status change is an Activity."""
    touched = Touched()
    case.subject = ticket.subject
    if ticket.description:
        case.description = ticket.description
    case.priority = priority
    status = TICKET_STATUS[ticket.status]
    if status != case.status:
        activity = _activity(
            case,
            ActivityType.CASE_STATUS_CHANGED,
            f"Case #{case.id}: {case.status} → {status}",
            direction=Direction.INTERNAL,
            details={"from": case.status, "to": status},
            event_id=event_id,
        )
        case.status = status
        if status in (CaseStatus.RESOLVED, CaseStatus.CLOSED) and case.resolved_at is None:
            case.resolved_at = utcnow()
        session.add(activity)
        session.flush()
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
        direction=Direction.INBOUND,
        occurred_at=comment.created_at or utcnow(),
        details={"author_email": comment.author_email, "body": comment.body},
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
