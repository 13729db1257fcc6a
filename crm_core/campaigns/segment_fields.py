"""The fields a segment rule may name: what values each accepts and the SQL each op becomes."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, cast

from pydantic import TypeAdapter, ValidationError
from sqlalchemy import (
    Boolean,
    ColumnElement,
    SQLColumnExpression,
    String,
    and_,
    bindparam,
    exists,
    func,
    select,
)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler

from crm_core.campaigns.instants import check_duration, to_utc
from crm_core.customers.models import (
    ConsentStatus,
    Contact,
    Customer,
    CustomerKind,
    LifecycleStage,
)
from crm_core.support.models import CaseStatus, SupportCase

OPS = ("eq", "ne", "in", "contains", "gt", "lt", "exists")
MAX_IN_VALUES = 1000
MAX_TEXT = 255
OPEN_CASE_STATUSES = (CaseStatus.NEW, CaseStatus.OPEN, CaseStatus.PENDING)


@dataclass(frozen=True)
class Ago:
    """A moment relative to when the query is built: ``P30D`` is thirty days before then."""

    delta: dt.timedelta

    def before(self, now: dt.datetime) -> dt.datetime:
        return now - self.delta


class FieldSpec:
    """One segment field: its ops, how a rule's value is checked, and how it compiles."""

    ops: frozenset[str] = frozenset()
    needs_customer = False

    def coerce(self, op: str, value: Any) -> Any:
        """The value in the type the SQL wants; ValueError says what is wrong."""
        raise NotImplementedError

    def compile(self, op: str, value: Any) -> ColumnElement[bool]:
        """The WHERE clause of one rule."""
        raise NotImplementedError


@dataclass(frozen=True)
class TextField(FieldSpec):
    """A string column; ``fold`` normalizes values the way the column is stored."""

    column: SQLColumnExpression[Any]
    ops: frozenset[str] = frozenset({"eq", "ne", "in", "contains", "exists"})
    needs_customer: bool = False
    fold: Callable[[str], str] = str.lower
    # Compared through lower(): the column keeps the spelling people typed.
    case_insensitive: bool = False

    def coerce(self, op: str, value: Any) -> Any:
        if op == "exists":
            return _boolean(value)
        if op == "in":
            return [self.fold(_text(item)) for item in _list(value)]
        return self.fold(_text(value))

    def compile(self, op: str, value: Any) -> ColumnElement[bool]:
        column = self.column
        if op == "exists":
            present = and_(column.is_not(None), column != "")
            return present if value else ~present
        if op == "contains":
            return column.icontains(value, autoescape=True)
        if self.case_insensitive:
            column = func.lower(column)
        if op == "eq":
            return column == value
        if op == "ne":
            # A contact whose value is unknown is also "not X".
            return column.is_distinct_from(value)
        return column.in_(value)


@dataclass(frozen=True)
class ChoiceField(FieldSpec):
    """A column holding one of a fixed set of values (an enum)."""

    column: SQLColumnExpression[Any]
    choices: tuple[str, ...]
    ops: frozenset[str] = frozenset({"eq", "ne", "in"})
    needs_customer: bool = False

    def coerce(self, op: str, value: Any) -> Any:
        if op == "exists":
            return _boolean(value)
        values = _list(value) if op == "in" else [value]
        for item in values:
            if item not in self.choices:
                raise ValueError(f"{item!r} is not one of {', '.join(self.choices)}")
        return values if op == "in" else value

    def compile(self, op: str, value: Any) -> ColumnElement[bool]:
        column = self.column
        if op == "exists":
            return column.is_not(None) if value else column.is_(None)
        if op == "eq":
            return column == value
        if op == "ne":
            return column.is_distinct_from(value)
        return column.in_(value)


@dataclass(frozen=True)
class DateTimeField(FieldSpec):
    """A timestamp compared with an ISO 8601 date (midnight UTC), date-time, or duration ago.

    A duration (``P30D``, ``PT12H``) is measured back from the moment the query
    is built, so a recurring campaign's "active in the last 30 days" moves along.
    """

    column: SQLColumnExpression[Any]
    ops: frozenset[str] = frozenset({"gt", "lt", "exists"})

    def coerce(self, op: str, value: Any) -> Any:
        if op == "exists":
            return _boolean(value)
        return _instant(value)

    def compile(self, op: str, value: Any) -> ColumnElement[bool]:
        column = self.column
        if op == "exists":
            return column.is_not(None) if value else column.is_(None)
        return column > value if op == "gt" else column < value


@dataclass(frozen=True)
class TagsField(FieldSpec):
    """A JSON list of strings: ``contains`` one tag, or ``exists`` (has any tag)."""

    column: SQLColumnExpression[Any]
    ops: frozenset[str] = frozenset({"contains", "exists"})
    needs_customer: bool = False

    def coerce(self, op: str, value: Any) -> Any:
        return _boolean(value) if op == "exists" else _text(value)

    def compile(self, op: str, value: Any) -> ColumnElement[bool]:
        if op == "exists":
            has_tags: ColumnElement[bool] = JsonArrayNotEmpty(self.column)
            return has_tags if value else ~has_tags
        return JsonArrayContains(self.column, value)


@dataclass(frozen=True)
class HasOpenCaseField(FieldSpec):
    """Whether the contact's customer has a support case that is new, open or pending."""

    ops: frozenset[str] = frozenset({"eq"})

    def coerce(self, op: str, value: Any) -> Any:
        return _boolean(value)

    def compile(self, op: str, value: Any) -> ColumnElement[bool]:
        open_case = exists(
            select(SupportCase.id).where(
                SupportCase.customer_id == Contact.customer_id,
                SupportCase.status.in_(OPEN_CASE_STATUSES),
            )
        )
        return open_case if value else ~open_case


class JsonArrayContains(ColumnElement[bool]):
    """``array`` (a JSON column holding a list) has ``item`` as an element."""

    type = Boolean()
    inherit_cache = False

    def __init__(self, array: SQLColumnExpression[Any], item: str) -> None:
        self.array = _clause(array)
        self.item = item


class JsonArrayNotEmpty(ColumnElement[bool]):
    """``array`` (a JSON column) holds a list with at least one element."""

    type = Boolean()
    inherit_cache = False

    def __init__(self, array: SQLColumnExpression[Any]) -> None:
        self.array = _clause(array)


def _clause(expression: SQLColumnExpression[Any]) -> ColumnElement[Any]:
    """The Core column behind an ORM attribute, which is what a compiler visits."""
    clause = getattr(expression, "__clause_element__", None)
    return cast(ColumnElement[Any], clause() if clause else expression)


@compiles(JsonArrayContains, "postgresql")
def _contains_postgresql(element: JsonArrayContains, compiler: SQLCompiler, **kw: Any) -> str:
    # The columns are json, not jsonb; the cast gives containment (@>), which is exact.
    array = compiler.process(element.array, **kw)
    item = compiler.process(bindparam(None, json.dumps([element.item]), String()), **kw)
    # COALESCE: a NULL column must be "no", not unknown, or NOT would drop it too.
    return f"COALESCE(CAST({array} AS JSONB) @> CAST({item} AS JSONB), false)"


# The SQLite spelling is also the default, so str(query) works when logging or debugging.
@compiles(JsonArrayContains)
@compiles(JsonArrayContains, "sqlite")
def _contains_sqlite(element: JsonArrayContains, compiler: SQLCompiler, **kw: Any) -> str:
    array = compiler.process(element.array, **kw)
    item = compiler.process(bindparam(None, element.item, String()), **kw)
    # Both pieces are compiled SQL (a column and a bound parameter), never text.
    exists_item = f"EXISTS (SELECT 1 FROM json_each({array}) WHERE json_each.value = {item})"  # noqa: S608
    return f"COALESCE(json_type({array}) = 'array' AND {exists_item}, 0)"


@compiles(JsonArrayNotEmpty, "postgresql")
def _not_empty_postgresql(element: JsonArrayNotEmpty, compiler: SQLCompiler, **kw: Any) -> str:
    # CASE, not AND: PostgreSQL may evaluate the length before the type check.
    array = f"CAST({compiler.process(element.array, **kw)} AS JSONB)"
    return (
        f"(CASE WHEN jsonb_typeof({array}) = 'array' "
        f"THEN jsonb_array_length({array}) > 0 ELSE false END)"
    )


@compiles(JsonArrayNotEmpty)
@compiles(JsonArrayNotEmpty, "sqlite")
def _not_empty_sqlite(element: JsonArrayNotEmpty, compiler: SQLCompiler, **kw: Any) -> str:
    array = compiler.process(element.array, **kw)
    return f"COALESCE(json_type({array}) = 'array' AND json_array_length({array}) > 0, 0)"


def _text(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError("must be a non-empty string")
    if len(value) > MAX_TEXT:
        raise ValueError(f"must be at most {MAX_TEXT} characters")
    return value.strip()


def _list(value: Any) -> list[Any]:
    if isinstance(value, str | bytes) or not isinstance(value, Sequence):
        raise ValueError("must be a list")
    if not 1 <= len(value) <= MAX_IN_VALUES:
        raise ValueError(f"must hold between 1 and {MAX_IN_VALUES} values")
    return list(value)


def _boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError("must be true or false")
    return value


def _instant(value: Any) -> dt.datetime | Ago:
    """An aware UTC datetime from an ISO 8601 date or date-time (naive means UTC), or an Ago.

    ValueError names the problem, a moment or a duration out of range included.
    """
    if not isinstance(value, str):
        raise ValueError("must be an ISO 8601 date, date-time or duration (P30D) string")
    if value.strip().upper().startswith("P"):
        return _ago(value.strip())
    try:
        if len(value.strip()) == 10:
            day = dt.date.fromisoformat(value.strip())
            instant = dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)
        else:
            instant = dt.datetime.fromisoformat(value.strip())
    except ValueError:
        raise ValueError(f"{value!r} is not an ISO 8601 date or date-time") from None
    if instant.tzinfo is None:
        instant = instant.replace(tzinfo=dt.UTC)
    return to_utc(instant)


def _ago(value: str) -> Ago:
    try:
        delta = _DURATION.validate_python(value)
    except ValidationError:
        raise ValueError(f"{value!r} is not an ISO 8601 duration like P30D or PT12H") from None
    return Ago(check_duration(delta))


_DURATION = TypeAdapter(dt.timedelta)

FIELDS: dict[str, FieldSpec] = {
    "lifecycle_stage": ChoiceField(
        Customer.lifecycle_stage,
        tuple(LifecycleStage),
        needs_customer=True,
    ),
    "customer_kind": ChoiceField(Customer.kind, tuple(CustomerKind), needs_customer=True),
    # The contact's own country when known, else its customer's (ISO 3166 alpha-2, upper-case).
    "country": TextField(
        func.coalesce(Contact.country, Customer.country),
        ops=frozenset({"eq", "ne", "in", "exists"}),
        needs_customer=True,
        fold=str.upper,
    ),
    "company_domain": TextField(Customer.domain, needs_customer=True),
    "job_title": TextField(Contact.job_title, case_insensitive=True),
    "created_at": DateTimeField(Contact.created_at, ops=frozenset({"gt", "lt"})),
    "last_activity_at": DateTimeField(Contact.last_activity_at),
    "tags": TagsField(Contact.tags),
    "customer_tags": TagsField(Customer.tags, needs_customer=True),
    "has_open_case": HasOpenCaseField(),
    # As last stated; a contact never asked has none, so ``ne`` and ``exists`` find it too.
    "marketing_consent": ChoiceField(
        Contact.marketing_consent,
        tuple(ConsentStatus),
        ops=frozenset({"eq", "ne", "in", "exists"}),
    ),
    "marketing_consent_at": DateTimeField(Contact.marketing_consent_at),
}
