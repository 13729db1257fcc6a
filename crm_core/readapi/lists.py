"""Lists of each entity for incremental sync: filters, ``updated_since``, keyset pages.

Every list is ordered by ``(updated_at, id)``, oldest change first, and its cursor is the
last row's pair. A row changed while a client pages moves behind the cursor and comes again
on a later page with its new values, so a sync that walks to the end misses nothing; the
client keeps the last ``updated_at`` it saw and passes it as ``updated_since`` next time.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import Field
from sqlalchemy import ColumnElement, and_, false, func, or_, select, tuple_
from sqlalchemy.orm import InstrumentedAttribute, Session

from crm_core.base.pagination import Page, cursor_time, decode_cursor, encode_cursor
from crm_core.base.serialize import to_dict
from crm_core.customers.models import Contact, Customer, CustomerKind, LifecycleStage
from crm_core.db import utcnow
from crm_core.errors import FieldError, InvalidInput
from crm_core.readapi.queries import contact_dicts
from crm_core.sales.models import (
    Agreement,
    AgreementStatus,
    Opportunity,
    OpportunityStage,
    Order,
    OrderStatus,
    Product,
    ProductKind,
)
from crm_core.support.models import CasePriority, CaseStatus, SupportCase

# Ids are BIGINT: a larger one names nothing.
_MAX_ID = 2**63 - 1
# Parameters every list reads besides its filters.
PAGING = ("cursor", "limit")


class BadValue(ValueError):
    """A parameter value a filter cannot use; the message says what it must be."""


@dataclass(frozen=True)
class Filter:
    """One query parameter: how its text is read, and the condition it adds."""

    parse: Callable[[str], Any]
    where: Callable[[Any], ColumnElement[bool]]
    # The parameter as a client sends it, for the API's description: a type pydantic
    # describes (``parse`` is what reads it), and what it selects.
    shown: Any = str
    description: str = ""


@dataclass(frozen=True)
class Listing:
    """A listable entity and the filters its list takes (``updated_since`` is in every list)."""

    model: Any
    filters: Mapping[str, Filter]


def parse_time(raw: str) -> dt.datetime:
    """An ISO 8601 time; UTC when it names no offset.

    A ``+`` left unencoded in a query string arrives as a space: read it back as ``+``.
    """
    text = raw.strip()
    if text[-6:-5] == " ":
        text = f"{text[:-6]}+{text[-5:]}"
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        raise BadValue("must be an ISO 8601 time, like 2026-12-01T09:30:00Z") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def parse_id(raw: str) -> int:
    if not (raw.isascii() and raw.isdigit()) or not 0 < int(raw) <= _MAX_ID:
        raise BadValue("must be a positive integer id")
    return int(raw)


def parse_bool(raw: str) -> bool:
    lowered = raw.strip().lower()
    if lowered in ("true", "1", "yes"):
        return True
    if lowered in ("false", "0", "no"):
        return False
    raise BadValue("must be true or false")


def parse_text(raw: str) -> str:
    text = raw.strip()
    if not text or len(text) > 255:
        raise BadValue("must be 1 to 255 characters")
    return text


def one_of(values: type[enum.StrEnum]) -> Callable[[str], list[str]]:
    """A parser for one value of ``values``, or several separated by commas."""
    allowed = [v.value for v in values]

    def parse(raw: str) -> list[str]:
        given = [part.strip().lower() for part in raw.split(",") if part.strip()]
        if not given or any(value not in allowed for value in given):
            raise BadValue(f"must be one or more of {', '.join(allowed)} (comma-separated)")
        return given

    return parse


# What each parser reads, as the API's description shows it.
PositiveId = Annotated[int, Field(ge=1, le=_MAX_ID)]
Text = Annotated[str, Field(min_length=1, max_length=255)]
SHOWN: dict[Callable[[str], Any], Any] = {
    parse_id: PositiveId,
    parse_bool: bool,
    parse_text: Text,
    parse_time: dt.datetime,
}


def _in(column: InstrumentedAttribute[Any], values: type[enum.StrEnum]) -> Filter:
    return Filter(
        parse=one_of(values),
        where=column.in_,
        shown=list[values],  # type: ignore[valid-type]
        description=f"Only rows whose {column.key} is one of these (repeated, or comma-separated).",
    )


def _equals(column: InstrumentedAttribute[Any], parse: Callable[[str], Any]) -> Filter:
    return Filter(
        parse=parse,
        where=lambda value: column == value,
        shown=SHOWN[parse],
        description=f"Only rows whose {column.key} is this.",
    )


def sla_breached(now: dt.datetime) -> ColumnElement[bool]:
    """Cases that missed a due time: answered or resolved late, or still waiting past it."""
    case = SupportCase
    return or_(
        and_(case.first_responded_at.is_(None), case.first_response_due_at < now),
        case.first_responded_at > case.first_response_due_at,
        and_(case.resolved_at.is_(None), case.resolution_due_at < now),
        case.resolved_at > case.resolution_due_at,
    )


def _breached(value: bool) -> ColumnElement[bool]:
    breached = sla_breached(utcnow())
    # ``NOT`` over a NULL comparison is NULL: coalesce, so a case with no due time is "not".
    return breached if value else ~func.coalesce(breached, false())


def _email(value: str) -> ColumnElement[bool]:
    return Contact.email_normalized == value.lower()


LISTINGS: dict[str, Listing] = {
    "customers": Listing(
        Customer,
        {
            "kind": _in(Customer.kind, CustomerKind),
            "lifecycle_stage": _in(Customer.lifecycle_stage, LifecycleStage),
            "owner": _equals(Customer.owner, parse_text),
        },
    ),
    "contacts": Listing(
        Contact,
        {
            "email": Filter(
                parse=parse_text,
                where=_email,
                shown=Text,
                description="Only the contact with this address (matched normalized).",
            ),
            "customer_id": _equals(Contact.customer_id, parse_id),
        },
    ),
    "cases": Listing(
        SupportCase,
        {
            "status": _in(SupportCase.status, CaseStatus),
            "priority": _in(SupportCase.priority, CasePriority),
            "assignee": _equals(SupportCase.assignee, parse_text),
            "sla_breached": Filter(
                parse=parse_bool,
                where=_breached,
                shown=bool,
                description="Only cases that missed (true) or kept (false) their due times.",
            ),
            "customer_id": _equals(SupportCase.customer_id, parse_id),
        },
    ),
    "opportunities": Listing(
        Opportunity,
        {
            "stage": _in(Opportunity.stage, OpportunityStage),
            "owner": _equals(Opportunity.owner, parse_text),
            "customer_id": _equals(Opportunity.customer_id, parse_id),
        },
    ),
    "orders": Listing(
        Order,
        {
            "status": _in(Order.status, OrderStatus),
            "customer_id": _equals(Order.customer_id, parse_id),
        },
    ),
    "products": Listing(
        Product,
        {"kind": _in(Product.kind, ProductKind), "active": _equals(Product.active, parse_bool)},
    ),
    "agreements": Listing(
        Agreement,
        {
            "status": _in(Agreement.status, AgreementStatus),
            "customer_id": _equals(Agreement.customer_id, parse_id),
        },
    ),
}


def filters_of(listing: Listing) -> dict[str, Filter]:
    """Every filter ``listing`` takes: its own, and ``updated_since``."""
    since = Filter(
        parse=parse_time,
        where=listing.model.updated_at.__ge__,
        shown=dt.datetime,
        description="Only rows changed at or after this time (ISO 8601; UTC without an offset).",
    )
    return {**listing.filters, "updated_since": since}


def conditions(listing: Listing, params: Mapping[str, str]) -> list[ColumnElement[bool]]:
    """The WHERE clauses ``params`` ask for; every bad or unknown parameter is a field error."""
    known = filters_of(listing)
    errors, found = [], []
    for name, raw in params.items():
        if name in PAGING:
            continue
        chosen = known.get(name)
        if chosen is None:
            names = ", ".join(sorted(known))
            errors.append(FieldError((name,), f"is not a filter of this list ({names})"))
            continue
        try:
            found.append(chosen.where(chosen.parse(raw)))
        except BadValue as exc:
            errors.append(FieldError((name,), str(exc)))
    if errors:
        raise InvalidInput(errors)
    return found


def list_entities(
    session: Session, *, kind: str, params: Mapping[str, str], cursor: str | None, limit: int
) -> Page:
    """A page of ``kind`` (a ``LISTINGS`` key) by ``(updated_at, id)``, filtered by ``params``."""
    listing = LISTINGS[kind]
    model = listing.model
    where = conditions(listing, params)
    if model is Contact or model is Customer:  # a merged record lives on in its survivor
        where.append(model.merged_into.is_(None))
    after = decode_cursor(cursor, length=2)
    query = select(model).where(*where).order_by(model.updated_at, model.id).limit(limit + 1)
    if after is not None:
        if not isinstance(after[1], int):
            raise InvalidInput([FieldError(("cursor",), "not a cursor this API returned")])
        moment = cursor_time(after[0])
        query = query.where(tuple_(model.updated_at, model.id) > tuple_(moment, after[1]))
    rows = list(session.scalars(query))
    more = len(rows) > limit
    rows = rows[:limit]
    last = rows[-1] if rows else None
    # A contact's marketing consent is one object, as in every other answer that shows one.
    items = contact_dicts(session, rows) if model is Contact else [to_dict(row) for row in rows]
    return Page(
        items=items,
        next=encode_cursor([last.updated_at.isoformat(), last.id]) if more and last else None,
    )
