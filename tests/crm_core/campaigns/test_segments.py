"""Segments: every field and op against a small known population, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from sqlalchemy.orm import Session

from crm_core import models as m
from crm_core.bounces.suppression import suppress
from crm_core.campaigns.segments import parse_segment, segment_query
from crm_core.errors import InvalidInput
from tests.factories import ContactFactory, CustomerFactory, SupportCaseFactory


def at(day: str) -> dt.datetime:
    return dt.datetime.fromisoformat(day).replace(tzinfo=dt.UTC)


@pytest.fixture
def people(session: Session) -> dict[str, int]:
    """Five contacts with known attributes (one without an e-mail); name -> contact id."""
    acme = CustomerFactory(
        name="Acme", domain="acme.example", lifecycle_stage="customer", country="DE"
    )
    solo = CustomerFactory(name="Solo", kind="person", lifecycle_stage="lead", country="FR")
    globex = CustomerFactory(name="Globex", domain="globex.example", lifecycle_stage="prospect")
    initech = CustomerFactory(
        name="Initech",
        domain="initech.example",
        lifecycle_stage="churned",
        country="DE",
        tags=["partner"],
    )
    SupportCaseFactory(customer_id=solo.id, status="pending")
    SupportCaseFactory(customer_id=globex.id, status="closed")
    contacts = {
        "ann": ContactFactory(
            customer=acme,
            job_title="Head of Sales",
            tags=["vip", "newsletter"],
            created_at=at("2026-01-10"),
            last_activity_at=at("2026-03-01T12:00:00"),
            marketing_consent="granted",
            marketing_consent_at=at("2026-02-01"),
        ),
        "bob": ContactFactory(
            customer=solo,
            country="US",
            job_title="Engineer",
            tags=[],
            created_at=at("2026-02-10"),
            last_activity_at=None,
        ),
        "cat": ContactFactory(
            customer=globex,
            job_title=None,
            tags=["newsletter"],
            created_at=at("2025-12-01"),
            last_activity_at=at("2026-01-05"),
            marketing_consent="denied",
            marketing_consent_at=at("2026-01-05"),
        ),
        "dan": ContactFactory(
            customer=acme,
            email=None,
            email_normalized=None,
            tags=["vip"],
            created_at=at("2026-01-10"),
        ),
        "eve": ContactFactory(
            customer=initech,
            country="GB",
            job_title="Sales engineer",
            tags=None,
            created_at=at("2026-03-01"),
            last_activity_at=at("2026-02-01"),
            marketing_consent="unknown",
        ),
    }
    session.flush()
    return {name: contact.id for name, contact in contacts.items()}


def matched(session: Session, people: dict[str, int], doc: Any) -> set[str]:
    ids = set(session.scalars(segment_query(parse_segment(doc))))
    return {name for name, contact_id in people.items() if contact_id in ids}


def rule(field: str, op: str, value: Any) -> dict[str, Any]:
    return {"all": [{"field": field, "op": op, "value": value}]}


EVERYONE = {"ann", "bob", "cat", "eve"}

CASES = [
    ("lifecycle_stage", "eq", "customer", {"ann"}),
    ("lifecycle_stage", "ne", "customer", {"bob", "cat", "eve"}),
    ("lifecycle_stage", "in", ["lead", "prospect"], {"bob", "cat"}),
    ("customer_kind", "eq", "person", {"bob"}),
    ("customer_kind", "ne", "person", {"ann", "cat", "eve"}),
    ("customer_kind", "in", ["company"], {"ann", "cat", "eve"}),
    # The contact's own country wins over its customer's; lower case is folded.
    ("country", "eq", "de", {"ann"}),
    ("country", "ne", "DE", {"bob", "cat", "eve"}),
    ("country", "in", ["US", "gb"], {"bob", "eve"}),
    ("country", "exists", True, {"ann", "bob", "eve"}),
    ("country", "exists", False, {"cat"}),
    ("company_domain", "eq", "ACME.example", {"ann"}),
    ("company_domain", "ne", "acme.example", {"bob", "cat", "eve"}),
    ("company_domain", "in", ["globex.example", "initech.example"], {"cat", "eve"}),
    ("company_domain", "contains", "tech", {"eve"}),
    ("company_domain", "exists", True, {"ann", "cat", "eve"}),
    ("company_domain", "exists", False, {"bob"}),
    ("job_title", "eq", "engineer", {"bob"}),
    ("job_title", "ne", "Engineer", {"ann", "cat", "eve"}),
    ("job_title", "in", ["head of sales", "ENGINEER"], {"ann", "bob"}),
    ("job_title", "contains", "SALES", {"ann", "eve"}),
    ("job_title", "contains", "%", set()),
    ("job_title", "exists", False, {"cat"}),
    ("created_at", "gt", "2026-01-10", {"bob", "eve"}),
    ("created_at", "lt", "2026-01-10T00:00:01+00:00", {"ann", "cat"}),
    ("created_at", "gt", "2026-02-10T01:00:00+02:00", {"bob", "eve"}),
    ("last_activity_at", "gt", "2026-02-01T00:00:00", {"ann"}),
    ("last_activity_at", "lt", "2026-02-01", {"cat"}),
    ("last_activity_at", "exists", True, {"ann", "cat", "eve"}),
    ("last_activity_at", "exists", False, {"bob"}),
    ("tags", "contains", "vip", {"ann"}),
    ("tags", "contains", "newsletter", {"ann", "cat"}),
    ("tags", "contains", "vi", set()),
    ("tags", "exists", True, {"ann", "cat"}),
    ("tags", "exists", False, {"bob", "eve"}),
    ("customer_tags", "contains", "partner", {"eve"}),
    ("customer_tags", "exists", True, {"eve"}),
    ("has_open_case", "eq", True, {"bob"}),
    ("has_open_case", "eq", False, {"ann", "cat", "eve"}),
    ("marketing_consent", "eq", "granted", {"ann"}),
    # Never stated (bob) is not "denied" either.
    ("marketing_consent", "ne", "denied", {"ann", "bob", "eve"}),
    ("marketing_consent", "in", ["denied", "unknown"], {"cat", "eve"}),
    ("marketing_consent", "exists", False, {"bob"}),
    ("marketing_consent_at", "gt", "2026-01-10", {"ann"}),
    ("marketing_consent_at", "lt", "2026-01-10", {"cat"}),
    ("marketing_consent_at", "exists", True, {"ann", "cat"}),
]


def test_require_consent_keeps_only_contacts_who_granted_it(
    session: Session, people: dict[str, int]
) -> None:
    query = segment_query(parse_segment({}), require_consent=True)
    ids = set(session.scalars(query))
    assert {name for name, contact_id in people.items() if contact_id in ids} == {"ann"}
    assert matched(session, people, {}) == EVERYONE


@pytest.mark.parametrize(("field", "op", "value", "expected"), CASES)
def test_each_field_and_op_selects_the_right_contacts(
    session: Session, people: dict[str, int], field: str, op: str, value: Any, expected: set[str]
) -> None:
    assert matched(session, people, rule(field, op, value)) == expected


def test_fields_and_ops_are_all_covered() -> None:
    from crm_core.campaigns.segment_fields import FIELDS

    covered = {(field, op) for field, op, _, _ in CASES}
    declared = {(name, op) for name, spec in FIELDS.items() for op in spec.ops}
    assert declared == covered


def test_an_empty_document_is_everyone_with_an_email(
    session: Session, people: dict[str, int]
) -> None:
    assert matched(session, people, {}) == EVERYONE
    assert matched(session, people, None) == EVERYONE


def test_groups_nest(session: Session, people: dict[str, int]) -> None:
    doc = {
        "any": [
            {
                "all": [
                    rule("tags", "contains", "vip")["all"][0],
                    rule("country", "eq", "DE")["all"][0],
                ]
            },
            {"field": "has_open_case", "op": "eq", "value": True},
        ]
    }
    assert matched(session, people, doc) == {"ann", "bob"}
    assert matched(session, people, {"all": []}) == EVERYONE
    assert matched(session, people, {"any": []}) == set()


def test_suppressed_addresses_can_be_left_out(session: Session, people: dict[str, int]) -> None:
    ann = session.get(m.Contact, people["ann"])
    assert ann is not None
    assert ann.email_normalized
    suppress(session, email_normalized=ann.email_normalized, reason="unsubscribed")
    query = segment_query(parse_segment({}), exclude_suppressed=True)
    ids = set(session.scalars(query))
    assert people["ann"] not in ids
    assert {people["bob"], people["cat"], people["eve"]} <= ids


def test_the_query_is_one_statement_of_contact_ids(
    session: Session, people: dict[str, int]
) -> None:
    query = segment_query(parse_segment(rule("tags", "contains", "vip")))
    assert [column.name for column in query.selected_columns] == ["id"]
    assert "JOIN" not in str(query)
    joined = segment_query(parse_segment(rule("country", "eq", "DE")))
    assert "JOIN customers" in str(joined)


@pytest.mark.parametrize(
    ("doc", "loc", "words"),
    [
        (
            {"all": [{}, {"field": "nope", "op": "eq", "value": 1}]},
            ("segment", "all", 1, "field"),
            "unknown field",
        ),
        (
            {"all": [{"field": "tags", "op": "gt", "value": "x"}]},
            ("segment", "all", 0, "op"),
            "not valid for tags",
        ),
        (
            {"all": [{"field": "tags", "op": "like", "value": "x"}]},
            ("segment", "all", 0, "op"),
            "unknown op",
        ),
        (
            {"any": [{"field": "created_at", "op": "gt", "value": "yesterday"}]},
            ("segment", "any", 0, "value"),
            "ISO 8601",
        ),
        (
            {"any": [{"field": "created_at", "op": "gt", "value": 5}]},
            ("segment", "any", 0, "value"),
            "ISO 8601",
        ),
        (
            {"all": [{"field": "lifecycle_stage", "op": "eq", "value": "vip"}]},
            ("segment", "all", 0, "value"),
            "not one of",
        ),
        (
            {"all": [{"field": "country", "op": "in", "value": "DE"}]},
            ("segment", "all", 0, "value"),
            "must be a list",
        ),
        (
            {"all": [{"field": "country", "op": "in", "value": []}]},
            ("segment", "all", 0, "value"),
            "between 1",
        ),
        (
            {"all": [{"field": "has_open_case", "op": "eq", "value": "yes"}]},
            ("segment", "all", 0, "value"),
            "true or false",
        ),
        (
            {"all": [{"field": "job_title", "op": "eq", "value": " "}]},
            ("segment", "all", 0, "value"),
            "non-empty",
        ),
        (
            {"all": [{"field": "job_title", "op": "eq", "value": "x", "extra": 1}]},
            ("segment", "all", 0, "extra"),
            "unexpected key",
        ),
        (
            {"all": [{"all": [{"field": "tags", "op": "eq"}]}]},
            ("segment", "all", 0, "all", 0, "op"),
            "not valid for tags",
        ),
        ({"all": [{"field": "job_title", "value": "x"}]}, ("segment", "all", 0, "op"), "required"),
        ({"all": [3]}, ("segment", "all", 0), "a rule is an object"),
        ({"all": "x"}, ("segment", "all"), "must be a list"),
        ({"all": [], "any": []}, ("segment",), "exactly one key"),
        ({"some": []}, ("segment",), "exactly one key"),
        ([], ("segment",), "exactly one key"),
    ],
)
def test_bad_rules_are_named_with_a_clear_message(
    doc: Any, loc: tuple[str | int, ...], words: str
) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_segment(doc)
    errors = {error.loc: error.msg for error in caught.value.errors}
    assert loc in errors, errors
    assert words.lower() in errors[loc].lower()


def test_every_bad_rule_is_reported_at_once() -> None:
    doc = {"all": [{"field": "nope", "op": "eq", "value": 1}, {"field": "tags", "op": "gt"}]}
    with pytest.raises(InvalidInput) as caught:
        parse_segment(doc)
    assert [error.loc for error in caught.value.errors] == [
        ("segment", "all", 0, "field"),
        ("segment", "all", 1, "op"),
    ]


def test_depth_and_size_are_bounded() -> None:
    deep: dict[str, Any] = {"all": []}
    for _ in range(10):
        deep = {"all": [deep]}
    with pytest.raises(InvalidInput, match="nest at most"):
        parse_segment(deep)
    many = {"any": [{"field": "tags", "op": "contains", "value": f"t{n}"} for n in range(500)]}
    with pytest.raises(InvalidInput, match="at most 200 rules"):
        parse_segment(many)


def test_durations_count_back_from_now(session: Session, people: dict[str, int]) -> None:
    doc = rule("last_activity_at", "gt", "P30D")
    now = at("2026-03-15")
    ids = set(session.scalars(segment_query(parse_segment(doc), now=now)))
    assert ids == {people["ann"]}
    later = set(session.scalars(segment_query(parse_segment(doc), now=at("2026-04-15"))))
    assert later == set()
    # 36 hours before 2026-01-11T13:00 is 2026-01-10T01:00: Ann (created at midnight) is older.
    hours = rule("created_at", "lt", "PT36H")
    assert matched_at(session, people, hours, at("2026-01-11T13:00:00")) == {"ann", "cat"}


def matched_at(session: Session, people: dict[str, int], doc: Any, now: Any) -> set[str]:
    ids = set(session.scalars(segment_query(parse_segment(doc), now=now)))
    return {name for name, contact_id in people.items() if contact_id in ids}


@pytest.mark.parametrize("value", ["P", "P-1D", "PXD", "-P1D"])
def test_bad_durations_are_refused(value: str) -> None:
    with pytest.raises(InvalidInput, match=r"duration|ISO 8601"):
        parse_segment(rule("created_at", "gt", value))


def test_values_are_typed_once_parsed() -> None:
    segment = parse_segment(
        {"all": [{"field": "created_at", "op": "gt", "value": "2026-01-01T02:00:00+02:00"}]}
    )
    assert segment.root is not None
    (only,) = segment.root.items
    assert only.value == dt.datetime(2026, 1, 1, tzinfo=dt.UTC)  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ("P999999999D", "at most 36525 days"),  # overflowed when subtracted from now
        ("0001-01-01T00:00:00+01:00", "between 1900-01-01"),  # overflowed on conversion to UTC
        ("9999-12-31T23:00:00-01:00", "between 1900-01-01"),
        ("0001-01-01", "between 1900-01-01"),
    ],
)
def test_moments_and_durations_out_of_range_are_refused_naming_the_value(
    value: str, words: str
) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_segment(rule("last_activity_at", "gt", value))
    assert [(e.loc, words in e.msg) for e in caught.value.errors] == [
        (("segment", "all", 0, "value"), True)
    ]


def test_the_values_of_all_rules_together_are_bounded() -> None:
    # 200 rules of 1,000 values each would be 200,000 bound parameters in one query.
    values = [f"v{n}" for n in range(1000)]
    many = {"any": [{"field": "job_title", "op": "in", "value": values} for _ in range(6)]}
    with pytest.raises(InvalidInput) as caught:
        parse_segment(many)
    assert [(e.loc, e.msg) for e in caught.value.errors] == [
        (("segment",), "a segment holds at most 5000 values in all its rules")
    ]
    parse_segment({"any": many["any"][:5]})
