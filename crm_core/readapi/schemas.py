"""Pydantic models of what the read API answers, for the OpenAPI document and its tests.

The rows are shown by ``serialize.to_dict`` (every column but the hidden ones), so their
models are made from the same mappers: ``row_model(Contact)`` has a field per shown column,
typed as ``to_dict`` writes it (decimals as strings, times in ISO 8601, JSON columns as
their Python annotation says). A column added to a table is in its model at once.
"""

from __future__ import annotations

import datetime as dt
import typing
from decimal import Decimal
from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, create_model
from sqlalchemy import JSON, inspect
from sqlalchemy.orm import Mapped

from crm_core.activities.models import Activity
from crm_core.base.pagination import DEFAULT_LIMIT, MAX_LIMIT
from crm_core.base.serialize import HIDDEN
from crm_core.bounces.models import MailBounce, Suppression
from crm_core.customers.models import ConsentStatus, Contact, Customer
from crm_core.db import Base
from crm_core.followups.models import FollowUpStatus, FollowUpTask
from crm_core.readapi import lists, search
from crm_core.readapi.queries import CONSENT_COLUMNS
from crm_core.sales.models import Agreement, Opportunity, Order, OrderLine, Product
from crm_core.support.models import SupportCase

T = TypeVar("T")


class Shown(BaseModel):
    """A document the API answers with: every field always present, nothing else."""

    model_config = ConfigDict(extra="forbid")


def _annotations(cls: type) -> dict[str, Any]:
    """The class's resolved annotations; mapped classes named by string resolve too."""
    names = {mapper.class_.__name__: mapper.class_ for mapper in Base.registry.mappers}
    hints: dict[str, Any] = {}
    for klass in reversed(cls.__mro__):
        module = typing.cast(Any, __import__(klass.__module__, fromlist=["_"]))
        for name in getattr(klass, "__annotations__", {}):
            try:
                hint = typing.get_type_hints(klass, vars(module), names).get(name)
            except (NameError, TypeError):
                continue
            if hint is not None:
                hints[name] = hint
    return hints


def _column_type(cls: type, key: str, hints: dict[str, Any]) -> Any:
    column: Any = inspect(cls).columns[key]
    hint = hints.get(key)
    if typing.get_origin(hint) is Mapped:
        inner = typing.get_args(hint)[0]
        if typing.get_origin(inner) is typing.Annotated:
            inner = typing.get_args(inner)[0]
        return inner
    if isinstance(column.type, JSON):
        return Any
    python = column.type.python_type
    return python | None if column.nullable else python


def row_model(
    cls: type, *, name: str | None = None, hide: frozenset[str] = frozenset()
) -> type[Shown]:
    """A model of ``to_dict(obj, hide=hide)`` for rows of the mapped class ``cls``."""
    hints = _annotations(cls)
    fields: dict[str, Any] = {}
    mapper: Any = inspect(cls)
    for attr in mapper.column_attrs:
        if attr.key in HIDDEN or attr.key in hide:
            continue
        annotation = _column_type(cls, attr.key, hints)
        args = typing.get_args(annotation)
        if Decimal in args or annotation is Decimal:
            annotation = str | None if type(None) in args else str
        fields[attr.key] = (annotation, ...)
    model: type[Shown] = create_model(
        name or cls.__name__, __base__=Shown, __doc__=f"A {cls.__name__} row.", **fields
    )
    return model


def _extended(base: type[Shown], name: str, doc: str, **fields: Any) -> type[Shown]:
    model: type[Shown] = create_model(  # type: ignore[call-overload]
        name, __base__=base, __doc__=doc, **{k: (v, ...) for k, v in fields.items()}
    )
    return model


class Page(Shown, Generic[T]):
    """One page of a list: ``next`` is the cursor of the following page (None on the last)."""

    items: list[T]
    next: str | None


def page_of(item: type[BaseModel]) -> Any:
    """``Page[item]`` for an item model made at run time (``row_model``, ``_extended``),
    which a type checker cannot take as a type argument."""
    return Page.__class_getitem__(item)


class MarketingConsent(Shown):
    """A contact's marketing consent as last stated: by which source, when and how."""

    status: ConsentStatus
    at: dt.datetime | None
    source_id: int | None
    source: str | None = Field(description="The stating source's name.")
    method: str | None


ContactDoc = _extended(
    row_model(Contact, name="ContactRow", hide=CONSENT_COLUMNS),
    "Contact",
    "A contact; its marketing consent is one object (null: never stated).",
    marketing_consent=MarketingConsent | None,
)
CustomerRow = row_model(Customer, name="CustomerRow")
CustomerDoc = _extended(
    CustomerRow,
    "Customer",
    "A customer with its contacts, the primary one first.",
    primary_contact_id=int | None,
    contacts=list[ContactDoc],  # type: ignore[valid-type]
)


class AttachmentDoc(Shown):
    """A file an e-mail carried, kept apart from the message: ``href`` downloads it."""

    id: int
    filename: str | None = Field(description="The name the sender gave it, if any.")
    content_type: str
    size: int = Field(description="Bytes.")
    inline: bool = Field(description="Shown in the message's body rather than attached.")
    href: str = Field(description="``/api/attachments/<id>``: its bytes.")


ActivityDoc = row_model(Activity, name="Activity")
ActivityShown = _extended(
    ActivityDoc,
    "ActivityWithAttachments",
    "An Activity, whole, with the attachments kept of its e-mail.",
    attachments=list[AttachmentDoc],
)
ActivityItem = _extended(
    row_model(Activity, name="ActivityRow", hide=frozenset({"details"})),
    "ActivityItem",
    "An Activity in a list: an excerpt of its body, a link to the whole, its attachments.",
    excerpt=str,
    truncated=bool,
    href=str,
    attachments=list[AttachmentDoc],
)
SupportCaseRow = row_model(SupportCase, name="SupportCaseRow")
CaseDoc = _extended(
    SupportCaseRow,
    "SupportCase",
    "A support case with a page of its Activities, oldest first.",
    activities=Page[ActivityItem],  # type: ignore[valid-type]
)
AgreementDoc = row_model(Agreement)
ContactMerged = _extended(
    ContactDoc,
    "ContactMerged",
    "The surviving contact, the id merged into it, and how many rows of each kind moved.",
    merged=int,
    moved=dict[str, int],
)
CustomerMerged = _extended(
    CustomerDoc,
    "CustomerMerged",
    "The surviving customer, the id merged into it, and how many rows of each kind moved.",
    merged=int,
    moved=dict[str, int],
)
AgreementShown = _extended(
    row_model(Agreement, name="AgreementRow"),
    "AgreementWithDeals",
    "An agreement with the ids of the deals it covers.",
    opportunity_ids=list[int],
)
OpportunityRow = row_model(Opportunity, name="OpportunityRow")
OpportunityDoc = _extended(
    OpportunityRow,
    "Opportunity",
    "An opportunity with the agreements that cover it.",
    agreements=list[AgreementDoc],  # type: ignore[valid-type]
)
OrderLineDoc = _extended(
    row_model(OrderLine, name="OrderLineRow"), "OrderLine", "An order line.", sku=str
)
OrderRow = row_model(Order, name="OrderRow")
OrderDoc = _extended(
    OrderRow,
    "Order",
    "An order with its lines.",
    lines=list[OrderLineDoc],  # type: ignore[valid-type]
)
FollowUpDoc = row_model(FollowUpTask, name="FollowUp")
SuppressionDoc = _extended(
    row_model(Suppression, name="SuppressionRow"),
    "Suppression",
    "A suppressed address with the verified failures of its address, newest first.",
    email=str,
    bounces=list[row_model(MailBounce, name="Bounce", hide=frozenset({"id"}))],  # type: ignore[misc]
)


class EventEntity(Shown):
    type: str
    id: int


class EventDoc(Shown):
    """An inbox event as senders and operators see it: status, errors, what it touched."""

    event_id: int
    source: str | None
    kind: str
    webhook_id: str
    topic: str | None
    status: str
    attempts: int
    error: str | None
    errors: list[Any]
    received_at: dt.datetime | None
    processed_at: dt.datetime | None
    next_attempt_at: dt.datetime | None
    outcome: Any
    body_removed_at: dt.datetime | None = Field(
        description="When the raw body was dropped (it can no longer be replayed); null: kept."
    )
    body_removed_by: str | None = Field(description="Why: ``retention`` or ``erasure``.")
    entities: list[EventEntity]


class AuditEntryDoc(Shown):
    """Who changed what: ``changes`` maps each field to its ``before`` and ``after``."""

    id: int
    occurred_at: dt.datetime
    actor: str
    actor_kind: str
    entity: str
    entity_id: int
    action: str
    changes: dict[str, Any] = Field(description="field -> {before, after}")


class PageQuery(BaseModel):
    """The query of a paged list."""

    cursor: str | None = Field(default=None, description="``next`` of the previous page.")
    limit: int = Field(default=DEFAULT_LIMIT, ge=1, le=MAX_LIMIT, description="Page size.")


class SuppressionQuery(PageQuery):
    email: str | None = Field(default=None, description="Only this address.")


class FollowUpQuery(PageQuery):
    status: FollowUpStatus | None = Field(default=None, description="Only tasks in this state.")


class AuditQuery(PageQuery):
    entity: str | None = Field(default=None, description="Only entries about this kind.")
    id: int | None = Field(default=None, ge=1, le=2**63 - 1, description="The entity's id.")
    actor: str | None = Field(default=None, description="Only this actor's entries (a label).")
    since: dt.datetime | None = Field(default=None, description="Only entries from then on.")


# What each list of ``GET /api/<kind>`` shows: its rows as ``to_dict`` writes them (a contact
# with its consent as one object).
ProductDoc = row_model(Product)
LIST_ITEMS: dict[str, type[Shown]] = {
    "customers": CustomerRow,
    "contacts": ContactDoc,
    "cases": SupportCaseRow,
    "opportunities": OpportunityRow,
    "orders": OrderRow,
    "products": ProductDoc,
    "agreements": AgreementDoc,
}


def list_query(kind: str) -> type[PageQuery]:
    """The query of ``GET /api/<kind>``: paging and the list's filters, as ``lists`` reads them."""
    fields: dict[str, Any] = {
        name: (chosen.shown | None, Field(default=None, description=chosen.description))
        for name, chosen in lists.filters_of(lists.LISTINGS[kind]).items()
    }
    model: type[PageQuery] = create_model(
        f"{kind.title()}Query",
        __base__=PageQuery,
        __doc__=f"The query of the {kind} list.",
        **fields,
    )
    return model


def list_page(kind: str) -> Any:
    """A page of ``GET /api/<kind>``."""
    return Page[LIST_ITEMS[kind]]  # type: ignore[valid-type]


class SearchQuery(PageQuery):
    q: str = Field(
        min_length=1,
        max_length=search.MAX_QUERY_CHARS,
        description="Words, an e-mail address or a phone number.",
    )


class SearchHit(Shown):
    """A contact, customer or case that matches, and where to read it whole."""

    type: Literal["contact", "customer", "case"]
    id: int
    title: str
    snippet: str
    score: float = Field(description="Up to 2: an exact e-mail address 2, a phone number 1.2.")
    href: str
