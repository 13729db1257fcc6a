"""The reads behind the API; each returns plain dicts (or None when not found)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select, tuple_
from sqlalchemy.orm import Session, selectinload

from crm_core.activities.models import Activity
from crm_core.attachments.services import attachments_of
from crm_core.base.pagination import (
    DEFAULT_LIMIT,
    Page,
    cursor_time,
    decode_cursor,
    encode_cursor,
)
from crm_core.base.serialize import plain, to_dict
from crm_core.customers.models import Contact, Customer
from crm_core.ingestion.models import Source
from crm_core.sales.models import Opportunity, Order, OrderLine, Product
from crm_core.support.models import SupportCase


def get_contact(session: Session, *, contact_id: int) -> dict[str, Any] | None:
    """A contact, its marketing consent as one object."""
    contact = session.get(Contact, contact_id)
    return contact_dicts(session, [contact])[0] if contact else None


CONSENT_COLUMNS = frozenset(
    {
        "marketing_consent",
        "marketing_consent_at",
        "marketing_consent_source_id",
        "marketing_consent_method",
    }
)


def contact_dicts(session: Session, contacts: Sequence[Contact]) -> list[dict[str, Any]]:
    """Contacts as dicts, each with ``marketing_consent``: ``null`` when never stated, else
    ``{"status", "at", "source_id", "source", "method"}`` (``source`` is the source's name)."""
    source_ids = {c.marketing_consent_source_id for c in contacts} - {None}
    names: dict[int | None, str] = {}
    if source_ids:
        query = select(Source.id, Source.name).where(Source.id.in_(source_ids))
        names = {row.id: row.name for row in session.execute(query)}
    return [
        {
            **to_dict(contact, hide=CONSENT_COLUMNS),
            "marketing_consent": None
            if contact.marketing_consent is None
            else {
                "status": contact.marketing_consent,
                "at": plain(contact.marketing_consent_at),
                "source_id": contact.marketing_consent_source_id,
                "source": names.get(contact.marketing_consent_source_id),
                "method": contact.marketing_consent_method,
            },
        }
        for contact in contacts
    ]


def get_customer(session: Session, *, customer_id: int) -> dict[str, Any] | None:
    """A customer with its contacts, the primary one first."""
    customer = session.get(Customer, customer_id, options=[selectinload(Customer.contacts)])
    if customer is None:
        return None
    live = [c for c in customer.contacts if c.merged_into is None]
    contacts = sorted(live, key=lambda c: (not c.is_primary, c.id))
    primary = next((c.id for c in contacts if c.is_primary), None)
    return {
        **to_dict(customer),
        "primary_contact_id": primary,
        "contacts": contact_dicts(session, contacts),
    }


# A list shows this much of an activity's body; the whole is at its ``href``.
EXCERPT_CHARS = 500


def activity_dict(
    activity: Activity, attachments: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    """An activity as a list shows it: its body cut to an excerpt, a link to the whole, and
    its attachments (each with the link that downloads it).

    An e-mail's text may be a megabyte; a page of them must stay small.
    """
    body = _body_of(activity)
    item = to_dict(activity, hide={"details"})
    item["excerpt"] = body[:EXCERPT_CHARS]
    item["truncated"] = len(body) > EXCERPT_CHARS
    item["href"] = f"/api/activities/{activity.id}"
    item["attachments"] = attachments or []
    return item


def activity_dicts(session: Session, activities: Sequence[Activity]) -> list[dict[str, Any]]:
    """``activity_dict`` of each, their attachments read in one query."""
    files = attachments_of(session, (a.id for a in activities))
    return [activity_dict(a, files.get(a.id)) for a in activities]


def _body_of(activity: Activity) -> str:
    details = activity.details if isinstance(activity.details, dict) else {}
    for name in ("text", "body"):
        value = details.get(name)
        if isinstance(value, str) and value.strip():
            return value
    return activity.summary or ""


def get_activity(session: Session, *, activity_id: int) -> dict[str, Any] | None:
    """One activity, whole: every detail, the full body, and its stored attachments (each
    with the link that downloads it; ``details.attachments`` keeps what the message said)."""
    activity = session.get(Activity, activity_id)
    if activity is None:
        return None
    return {
        **to_dict(activity),
        "attachments": attachments_of(session, [activity.id]).get(activity.id, []),
    }


# Whose timeline: the record and the Activity column that links to it.
TIMELINE_OWNERS: dict[str, tuple[Any, Any]] = {
    "customer": (Customer, Activity.customer_id),
    "contact": (Contact, Activity.contact_id),
    "opportunity": (Opportunity, Activity.opportunity_id),
}


def timeline(
    session: Session,
    *,
    of: str,
    ident: int,
    cursor: str | None,
    limit: int,
    types: Sequence[str] = (),
) -> Page | None:
    """The Activities of a customer, contact or opportunity (``of``), newest first, only of
    ``types`` when given; None when that record does not exist."""
    model, column = TIMELINE_OWNERS[of]
    after = decode_cursor(cursor, length=2)
    if session.get(model, ident) is None:
        return None
    query = (
        select(Activity)
        .where(column == ident)
        .order_by(Activity.occurred_at.desc(), Activity.id.desc())
        .limit(limit + 1)
    )
    if types:
        query = query.where(Activity.type.in_(list(types)))
    if after is not None:
        moment = cursor_time(after[0])
        query = query.where(tuple_(Activity.occurred_at, Activity.id) < tuple_(moment, after[1]))
    rows = list(session.scalars(query))
    more = len(rows) > limit
    rows = rows[:limit]
    last = rows[-1] if rows else None
    return Page(
        items=activity_dicts(session, rows),
        next=encode_cursor([last.occurred_at.isoformat(), last.id]) if more and last else None,
    )


def customer_timeline(
    session: Session, *, customer_id: int, cursor: str | None, limit: int
) -> Page | None:
    """A customer's Activities, newest first; None when the customer does not exist."""
    return timeline(session, of="customer", ident=customer_id, cursor=cursor, limit=limit)


def get_case(
    session: Session, *, case_id: int, cursor: str | None = None, limit: int = DEFAULT_LIMIT
) -> dict[str, Any] | None:
    """A support case with a page of its Activities (``{items, next}``), oldest first."""
    after = decode_cursor(cursor, length=2)
    case = session.get(SupportCase, case_id)
    if case is None:
        return None
    query = (
        select(Activity)
        .where(Activity.support_case_id == case_id)
        .order_by(Activity.occurred_at, Activity.id)
        .limit(limit + 1)
    )
    if after is not None:
        moment = cursor_time(after[0])
        query = query.where(tuple_(Activity.occurred_at, Activity.id) > tuple_(moment, after[1]))
    rows = list(session.scalars(query))
    more = len(rows) > limit
    rows = rows[:limit]
    last = rows[-1] if rows else None
    page = Page(
        items=activity_dicts(session, rows),
        next=encode_cursor([last.occurred_at.isoformat(), last.id]) if more and last else None,
    )
    return {**to_dict(case), "activities": page.as_dict()}


def get_opportunity(session: Session, *, opportunity_id: int) -> dict[str, Any] | None:
    """An opportunity with the agreements that cover it."""
    opportunity = session.get(
        Opportunity, opportunity_id, options=[selectinload(Opportunity.agreements)]
    )
    if opportunity is None:
        return None
    agreements = sorted(opportunity.agreements, key=lambda a: a.id)
    return {**to_dict(opportunity), "agreements": [to_dict(a) for a in agreements]}


def get_product(session: Session, *, product_id: int) -> dict[str, Any] | None:
    """One product, as the list shows it."""
    product = session.get(Product, product_id)
    return to_dict(product) if product is not None else None


def get_order(session: Session, *, order_id: int) -> dict[str, Any] | None:
    """An order with its lines (each with its SKU) and its total."""
    order = session.get(
        Order, order_id, options=[selectinload(Order.lines).selectinload(OrderLine.product)]
    )
    if order is None:
        return None
    lines = [{**to_dict(line), "sku": line.product.sku} for line in order.lines]
    return {**to_dict(order), "lines": lines}
