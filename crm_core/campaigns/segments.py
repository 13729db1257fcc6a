"""Segments: which contacts a campaign targets, as declarative JSON compiled to one SQL query.

A segment document is ``{}`` (every contact with an e-mail) or a group
``{"all": [...]}`` / ``{"any": [...]}`` whose items are rules
``{"field": ..., "op": ..., "value": ...}`` or nested groups. Documents come
from API clients, so every mistake is reported with the path of the bad rule.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError
from sqlalchemy import ColumnElement, Select, and_, exists, false, or_, select, true

from crm_core.bounces.models import Suppression
from crm_core.campaigns.segment_fields import FIELDS, OPS, Ago, FieldSpec
from crm_core.customers.models import ConsentStatus, Contact, Customer
from crm_core.db import utcnow
from crm_core.errors import FieldError, InvalidInput

MAX_DEPTH = 5
MAX_RULES = 200
# Values of all rules together (an ``in`` list counts each of its values): each is a bound
# parameter of the one query, which must stay far below PostgreSQL's 65,535.
MAX_VALUES = 5_000


class Rule(BaseModel):
    """One condition over a contact or its customer; ``value`` is already checked and typed."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    field: str
    op: Literal["eq", "ne", "in", "contains", "gt", "lt", "exists"]
    value: Any = None


class Group(BaseModel):
    """Every item (``all``) or at least one item (``any``) must hold."""

    model_config = ConfigDict(frozen=True)

    mode: Literal["all", "any"]
    items: tuple[Rule | Group, ...]


class Segment(BaseModel):
    """A parsed segment; ``root`` None means every contact with an e-mail."""

    model_config = ConfigDict(frozen=True)

    root: Group | None = None

    def uses_customer(self) -> bool:
        """Whether any rule reads a customer column (so the query joins customers)."""
        return self.root is not None and _group_uses_customer(self.root)


def parse_segment(doc: Any) -> Segment:
    """Check a segment document and type its values; InvalidInput names each bad rule."""
    parser = _Parser()
    root = parser.document(doc)
    if parser.value_count > MAX_VALUES:
        parser.fail(("segment",), f"a segment holds at most {MAX_VALUES} values in all its rules")
    if parser.errors:
        raise InvalidInput(parser.errors)
    return Segment(root=root)


def segment_query(
    segment: Segment,
    *,
    exclude_suppressed: bool = False,
    require_consent: bool = False,
    now: dt.datetime | None = None,
) -> Select[Any]:
    """One SELECT of the ids of the contacts in ``segment`` that have an e-mail address.

    With ``exclude_suppressed`` it also leaves out every address on the
    suppression list, which is what a send must do. Durations in date rules
    (``P30D``) count back from ``now`` (default: the current time). With
    ``require_consent`` only contacts whose marketing consent is ``granted`` are in
    (``CRM_CAMPAIGNS_REQUIRE_CONSENT``).
    """
    now = now or utcnow()
    # A merged contact's address belongs to its survivor, who is mailed once, as itself.
    query = select(Contact.id).where(
        Contact.email_normalized.is_not(None), Contact.merged_into.is_(None)
    )
    if segment.uses_customer():
        query = query.join(Customer, Customer.id == Contact.customer_id)
    if segment.root is not None:
        query = query.where(_compile_group(segment.root, now))
    if exclude_suppressed:
        suppressed = exists().where(Suppression.email_normalized == Contact.email_normalized)
        query = query.where(~suppressed)
    if require_consent:
        query = query.where(Contact.marketing_consent == ConsentStatus.GRANTED.value)
    return query.order_by(Contact.id)


def _group_uses_customer(group: Group) -> bool:
    for item in group.items:
        if isinstance(item, Group) and _group_uses_customer(item):
            return True
        if isinstance(item, Rule) and FIELDS[item.field].needs_customer:
            return True
    return False


def _compile_group(group: Group, now: dt.datetime) -> ColumnElement[bool]:
    clauses = [
        _compile_group(item, now) if isinstance(item, Group) else _compile_rule(item, now)
        for item in group.items
    ]
    if not clauses:
        # An empty "all" holds for everyone; an empty "any" for no one.
        return true() if group.mode == "all" else false()
    return and_(*clauses) if group.mode == "all" else or_(*clauses)


def _compile_rule(rule: Rule, now: dt.datetime) -> ColumnElement[bool]:
    value = rule.value.before(now) if isinstance(rule.value, Ago) else rule.value
    return FIELDS[rule.field].compile(rule.op, value)


class _Parser:
    """Walks a document, collecting every error with its location."""

    def __init__(self) -> None:
        self.errors: list[FieldError] = []
        self.rule_count = 0
        self.value_count = 0

    def fail(self, loc: tuple[str | int, ...], msg: str) -> None:
        self.errors.append(FieldError(loc=loc, msg=msg))

    def document(self, doc: Any) -> Group | None:
        if doc is None or (isinstance(doc, Mapping) and not doc):
            return None
        return self.group(doc, ("segment",), depth=1)

    def group(self, node: Any, loc: tuple[str | int, ...], *, depth: int) -> Group | None:
        keys = set(node) if isinstance(node, Mapping) else set()
        if not isinstance(node, Mapping) or len(keys) != 1 or not keys <= {"all", "any"}:
            self.fail(loc, 'a group is an object with exactly one key, "all" or "any"')
            return None
        mode = next(iter(keys))
        items = node[mode]
        if isinstance(items, str | bytes) or not isinstance(items, Sequence):
            self.fail((*loc, mode), "must be a list of rules and groups")
            return None
        if depth > MAX_DEPTH:
            self.fail(loc, f"groups nest at most {MAX_DEPTH} deep")
            return None
        parsed = [
            self.item(item, (*loc, mode, index), depth=depth) for index, item in enumerate(items)
        ]
        return Group(mode=mode, items=tuple(item for item in parsed if item is not None))

    def item(self, node: Any, loc: tuple[str | int, ...], *, depth: int) -> Rule | Group | None:
        if isinstance(node, Mapping) and ("all" in node or "any" in node):
            return self.group(node, loc, depth=depth + 1)
        self.rule_count += 1
        if self.rule_count > MAX_RULES:
            if self.rule_count == MAX_RULES + 1:
                self.fail(loc, f"a segment has at most {MAX_RULES} rules")
            return None
        return self.rule(node, loc)

    def rule(self, node: Any, loc: tuple[str | int, ...]) -> Rule | None:
        try:
            rule = Rule.model_validate(node)
        except ValidationError as exc:
            for error in exc.errors():
                self.fail((*loc, *error["loc"]), _pydantic_message(error))
            return None
        spec = FIELDS.get(rule.field)
        if spec is None:
            self.fail((*loc, "field"), f"unknown field {rule.field!r}; known: {', '.join(FIELDS)}")
            return None
        return self.checked(rule, spec, loc)

    def checked(self, rule: Rule, spec: FieldSpec, loc: tuple[str | int, ...]) -> Rule | None:
        if rule.op not in spec.ops:
            allowed = ", ".join(op for op in OPS if op in spec.ops)
            self.fail((*loc, "op"), f"{rule.op!r} is not valid for {rule.field}; use {allowed}")
            return None
        try:
            value = spec.coerce(rule.op, rule.value)
        except ValueError as exc:
            self.fail((*loc, "value"), str(exc))
            return None
        self.value_count += len(value) if isinstance(value, list) else 1
        return Rule(field=rule.field, op=rule.op, value=value)


def _pydantic_message(error: Any) -> str:
    if error["type"] == "literal_error":
        return f"unknown op; use one of {', '.join(OPS)}"
    if error["type"] == "extra_forbidden":
        return "unexpected key; a rule has field, op and value"
    if error["type"] == "model_type":
        return "a rule is an object with field, op and value"
    return str(error["msg"])
