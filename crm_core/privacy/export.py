"""Export: everything held about a person as one JSON document (a subject access request).

It reads the same rows an erasure would change (``crm_core.privacy.subjects.gather``), so
what a person is shown is what would be erased, plus the orders and agreements that are
kept.
"""

from __future__ import annotations

import base64
import datetime as dt
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from crm_core.activities.models import Activity
from crm_core.base.entities import EntityType, ExternalRef
from crm_core.base.serialize import plain, to_dict
from crm_core.bounces.models import MailBounce, SentMessage, Suppression
from crm_core.campaigns.models import CampaignSend
from crm_core.customers.models import Contact, Customer
from crm_core.db import utcnow
from crm_core.followups.models import FollowUpTask
from crm_core.ingestion.models import InboxEvent, Source
from crm_core.people.audit import entry_dict
from crm_core.people.models import AuditEntry
from crm_core.people.permissions import Actor, Permission
from crm_core.privacy.subjects import Subject, find_contact, gather
from crm_core.sales.models import Agreement, Opportunity, Order
from crm_core.support.models import SupportCase

EXPORT_FORMAT = 1


def export_person(
    session: Session,
    *,
    actor: Actor,
    contact_id: int | None = None,
    email: str | None = None,
    now: dt.datetime | None = None,
) -> dict[str, Any]:
    """Everything held about the person of ``contact_id`` (or ``email``), as JSON values.

    ``SubjectNotFound`` when there is no such contact.
    """
    actor.require(Permission.PERSONAL_DATA)
    contact = find_contact(session, contact_id=contact_id, email=email)
    subject = gather(session, contact)
    return {
        "format": EXPORT_FORMAT,
        "exported_at": (now or utcnow()).isoformat(),
        "contact_id": subject.contact_id,
        "erased_at": plain(contact.erased_at),
        "contacts": _rows(session, Contact, Contact.id.in_(subject.contact_ids), full=True),
        "customers": _rows(session, Customer, Customer.id.in_(subject.customer_ids), full=True),
        "support_cases": _rows(session, SupportCase, SupportCase.id.in_(sorted(subject.case_ids))),
        "opportunities": _rows(
            session, Opportunity, Opportunity.id.in_(sorted(subject.opportunity_ids))
        ),
        "orders": _orders(session, subject),
        "agreements": _rows(session, Agreement, Agreement.customer_id.in_(subject.customer_ids)),
        "activities": _rows(session, Activity, Activity.id.in_(sorted(subject.activity_ids))),
        "campaign_sends": _rows(
            session, CampaignSend, CampaignSend.contact_id.in_(subject.contact_ids)
        ),
        "follow_ups": _rows(
            session,
            FollowUpTask,
            or_(
                FollowUpTask.contact_id.in_(subject.contact_ids),
                FollowUpTask.support_case_id.in_(sorted(subject.case_ids)),
            ),
        ),
        "suppressions": _rows(
            session,
            Suppression,
            Suppression.email_normalized.in_(sorted(subject.addresses)),
            full=True,
        ),
        "sent_messages": _rows(
            session, SentMessage, SentMessage.recipient.in_(sorted(subject.addresses))
        ),
        "bounces": _rows(
            session, MailBounce, MailBounce.email_normalized.in_(sorted(subject.addresses))
        ),
        "external_refs": _rows(session, ExternalRef, _their_refs(subject)),
        "inbox_events": _events(session, subject),
        "audit_entries": _audit(session, subject),
    }


def _rows(session: Session, model: Any, where: Any, *, full: bool = False) -> list[Any]:
    """The rows of ``model`` matching ``where``, in id order, every column (``full``: the
    matching keys too, which are the person's data as well)."""
    rows = session.scalars(select(model).where(where).order_by(model.id))
    if not full:
        return [to_dict(row) for row in rows]
    return [
        {column.key: plain(getattr(row, column.key)) for column in model.__mapper__.column_attrs}
        for row in rows
    ]


def _orders(session: Session, subject: Subject) -> list[dict[str, Any]]:
    query = (
        select(Order)
        .where(
            or_(
                Order.contact_id.in_(subject.contact_ids),
                Order.customer_id.in_(subject.customer_ids),
            )
        )
        .order_by(Order.id)
    )
    return [
        {**to_dict(order), "lines": [to_dict(line) for line in order.lines]}
        for order in session.scalars(query)
    ]


def _their_refs(subject: Subject) -> Any:
    return or_(
        and_(
            ExternalRef.entity_type == EntityType.CONTACT.value,
            ExternalRef.entity_id.in_(subject.contact_ids),
        ),
        and_(
            ExternalRef.entity_type == EntityType.CUSTOMER.value,
            ExternalRef.entity_id.in_(subject.customer_ids),
        ),
    )


def _events(session: Session, subject: Subject) -> list[dict[str, Any]]:
    """The inbox events about them, each with its raw body (text, or base64 if not UTF-8)."""
    query = (
        select(InboxEvent, Source.name)
        .join(Source, Source.id == InboxEvent.source_id)
        .where(InboxEvent.id.in_(sorted(subject.event_ids)))
        .order_by(InboxEvent.id)
    )
    found = []
    for event, source in session.execute(query):
        document = {**to_dict(event, hide={"headers"}), "source": source}
        try:
            document["body"] = event.body.decode("utf-8")
        except UnicodeDecodeError:
            document["body_base64"] = base64.b64encode(event.body).decode("ascii")
        found.append(document)
    return found


def _audit(session: Session, subject: Subject) -> list[dict[str, Any]]:
    theirs = {
        EntityType.CONTACT.value: subject.contact_ids,
        EntityType.CUSTOMER.value: subject.customer_ids,
        EntityType.SUPPORT_CASE.value: sorted(subject.case_ids),
        EntityType.OPPORTUNITY.value: sorted(subject.opportunity_ids),
    }
    about = or_(
        *(
            and_(AuditEntry.entity == entity, AuditEntry.entity_id.in_(ids))
            for entity, ids in theirs.items()
        )
    )
    query = select(AuditEntry).where(about).order_by(AuditEntry.id)
    return [entry_dict(entry) for entry in session.scalars(query)]
