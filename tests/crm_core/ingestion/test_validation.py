"""Payload validation: every kind's fixture passes; every hostile body is a clean error list."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crm_core.ingestion.validation import validate_payload
from crm_core.payloads.schemas import EmailPayload, LeadPayload, OrderPayload
from tests.signed import fixture_bytes, fixture_json

JSON = "application/json"


@pytest.mark.parametrize(
    ("kind", "fixture"),
    [
        ("leads", "lead.json"),
        ("tickets", "ticket.json"),
        ("orders", "order.json"),
        ("deals", "deal.json"),
        ("emails", "email.json"),
    ],
)
def test_each_kinds_fixture_validates(kind: str, fixture: str) -> None:
    outcome = validate_payload(kind, fixture_bytes(fixture), JSON + "; charset=utf-8")
    assert outcome.ok, outcome.errors


def test_a_raw_rfc822_message_validates_into_its_headers() -> None:
    outcome = validate_payload("emails", fixture_bytes("email.eml"), "message/rfc822")
    assert isinstance(outcome.payload, EmailPayload)
    assert outcome.payload.message_id == "<reply-2@example.com>"
    assert outcome.payload.references == ["<ticket-4711@crm.example>"]


def test_a_raw_message_without_from_is_invalid() -> None:
    outcome = validate_payload("emails", b"Subject: hi\r\n\r\nbody", "message/rfc822")
    assert [e.field for e in outcome.errors] == ["from"]


def test_rfc822_is_only_for_emails() -> None:
    outcome = validate_payload("leads", fixture_bytes("email.eml"), "message/rfc822")
    assert [e.field for e in outcome.errors] == ["content_type"]


def _error_types(body: bytes, kind: str = "leads") -> list[tuple[str, str]]:
    outcome = validate_payload(kind, body, JSON)
    assert outcome.payload is None
    return [(e.field, e.type) for e in outcome.errors]


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b"not json", [("body", "json_invalid")]),
        (b"\xff\xfe{}", [("body", "encoding_error")]),
        (b"[" * 10_000 + b"]" * 10_000, [("body", "too_deep")]),
        (b'{"a":' * 10_000 + b"1" + b"}" * 10_000, [("body", "too_deep")]),
        (b'{"email": ' + b"9" * 5000 + b"}", [("body", "number_too_large")]),
        (b"[1, 2]", [("body", "model_type")]),
        (b"{}", [("body", "value_error")]),
    ],
)
def test_hostile_bodies_become_error_lists(body: bytes, expected: list) -> None:
    assert _error_types(body) == expected


def test_each_bad_field_is_named() -> None:
    order = fixture_json("order.json")
    order["currency"] = "euro"
    order["lines"][1]["quantity"] = 0
    order["lines"][0]["unit_price"] = "abc"
    fields = {field for field, _ in _error_types(json.dumps(order).encode(), "orders")}
    assert fields == {"currency", "lines.0.unit_price", "lines.1.quantity"}


def test_an_order_total_must_match_its_lines() -> None:
    order = fixture_json("order.json") | {"total": "41.00"}
    assert _error_types(json.dumps(order).encode(), "orders") == [("total", "value_error")]
    assert isinstance(
        validate_payload("orders", fixture_bytes("order.json"), JSON).payload, OrderPayload
    )


@pytest.mark.parametrize(
    ("kind", "fixture", "path"),
    [
        ("leads", "lead.json", ("email",)),
        ("tickets", "ticket.json", ("requester", "email")),
        ("orders", "order.json", ("email",)),
        ("deals", "deal.json", ("email",)),
    ],
)
def test_an_address_the_workers_would_refuse_is_refused_here(
    kind: str, fixture: str, path: tuple[str, ...]
) -> None:
    document = fixture_json(fixture)
    target = document
    for key in path[:-1]:
        target = target[key]
    for bad in ("ada.example.com", "ada@localhost", "Ada <ada@example.com>", "ada@exa mple.com"):
        target[path[-1]] = bad
        outcome = validate_payload(kind, json.dumps(document).encode(), JSON)
        assert [(e.field, e.type) for e in outcome.errors] == [(".".join(path), "value_error")]
    target[path[-1]] = "  Ada.Lovelace@Example.COM "
    outcome = validate_payload(kind, json.dumps(document).encode(), JSON)
    assert outcome.ok, outcome.errors


def test_an_empty_email_beside_a_phone_is_no_address_at_all() -> None:
    outcome = validate_payload("leads", b'{"email": " ", "phone": "+1 555 0100"}', JSON)
    assert outcome.ok, outcome.errors


def test_hostile_input_is_not_echoed_in_errors() -> None:
    secret_like = "<script>" + "x" * 5000
    outcome = validate_payload("leads", json.dumps({"email": [secret_like]}).encode(), JSON)
    assert all(secret_like not in e.msg for e in outcome.errors)


def test_a_lead_needs_email_or_phone() -> None:
    assert isinstance(
        validate_payload("leads", b'{"phone": "+1 555 0100"}', JSON).payload, LeadPayload
    )


@given(body=st.binary(max_size=3000), kind=st.sampled_from(["leads", "emails", "orders"]))
@settings(max_examples=200, deadline=None)
def test_fuzzed_bodies_never_raise(body: bytes, kind: str) -> None:
    outcome = validate_payload(kind, body, JSON)
    assert outcome.ok or outcome.errors


@given(document=st.recursive(st.none() | st.integers() | st.text(), st.lists, max_leaves=50))
@settings(max_examples=100, deadline=None)
def test_fuzzed_json_documents_never_raise(document: object) -> None:
    outcome = validate_payload("tickets", json.dumps(document).encode(), JSON)
    assert outcome.errors
