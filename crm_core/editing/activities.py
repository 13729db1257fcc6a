"""Calls, meetings and notes that people log on a customer, a contact, an opportunity, an order
or a case, with the actor as their author.

The activity joins its customer's timeline: the customer is taken from the linked entities,
which must all belong to the same one. A note on a case is internal: nothing mails it.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from crm_core.activities.models import Activity
from crm_core.base.serialize import plain
from crm_core.customers.models import Contact, Customer
from crm_core.db import utcnow
from crm_core.editing.records import RecordNotFound
from crm_core.editing.schemas import ActivityCreate, parse
from crm_core.errors import FieldError, InvalidInput
from crm_core.people import audit
from crm_core.people.permissions import Actor, Permission
from crm_core.sales.models import Opportunity, Order
from crm_core.support.models import SupportCase

_LINKS: dict[str, tuple[str, type[Any]]] = {
    "customer_id": ("customer", Customer),
    "contact_id": ("contact", Contact),
    "opportunity_id": ("opportunity", Opportunity),
    "order_id": ("order", Order),
    "support_case_id": ("case", SupportCase),
}


def _customer_of(session: Session, data: ActivityCreate) -> int:
    """The one customer the linked entities belong to; each must exist."""
    owners: dict[str, int] = {}
    for field, (what, model) in _LINKS.items():
        ident = getattr(data, field)
        if ident is None:
            continue
        row = session.get(model, ident)
        if row is None:
            raise RecordNotFound(what, ident)
        owners[field] = row.id if model is Customer else row.customer_id
    if not owners:
        names = ", ".join(_LINKS)
        # Named after the first link: "body" would be taken for the activity's text.
        raise InvalidInput([FieldError(("customer_id",), f"or another link is required: {names}")])
    if len(set(owners.values())) > 1:
        raise InvalidInput(
            [
                FieldError((field,), "belongs to another customer than the other links")
                for field in owners
            ]
        )
    return next(iter(owners.values()))


def log_activity(session: Session, *, actor: Actor, document: Any) -> Activity:
    """Record a call, a meeting or a note, authored by ``actor``."""
    actor.require(Permission.WRITE)
    data = parse(ActivityCreate, document)
    customer_id = _customer_of(session, data)
    details: dict[str, Any] = {"author": actor.label}
    if data.body is not None:
        details["body"] = data.body
    if data.duration_minutes is not None:
        details["duration_minutes"] = data.duration_minutes
    activity = Activity(
        type=data.type,
        direction=data.direction,
        summary=data.summary,
        occurred_at=data.occurred_at or utcnow(),
        details=details,
        customer_id=customer_id,
        contact_id=data.contact_id,
        opportunity_id=data.opportunity_id,
        order_id=data.order_id,
        support_case_id=data.support_case_id,
    )
    session.add(activity)
    session.flush()
    fields = ("type", "direction", "summary", "occurred_at", "details", *_LINKS)
    values = {name: plain(getattr(activity, name)) for name in fields}
    audit.record(
        session,
        actor=actor,
        entity="activity",
        entity_id=activity.id,
        action="create",
        changes=audit.created(values),
    )
    return activity
