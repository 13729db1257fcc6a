"""The lists for incremental sync: filters, ``updated_since``, keyset pages by (updated_at, id)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from crm_core import models as m
from crm_core.customers.services import set_primary_contact
from crm_core.errors import InvalidInput
from crm_core.readapi.lists import LISTINGS, list_entities
from tests.factories import (
    AgreementFactory,
    ContactFactory,
    CustomerFactory,
    OpportunityFactory,
    OrderFactory,
    ProductFactory,
    SupportCaseFactory,
)

START = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def walk(session: Session, listing: str, /, **params: str) -> list[dict[str, Any]]:
    """Every item of a list, two at a time, page after page."""
    seen: list[dict[str, Any]] = []
    cursor = None
    while True:
        page = list_entities(session, kind=listing, params=params, cursor=cursor, limit=2)
        seen.extend(page.items)
        if page.next is None:
            return seen
        cursor = page.next


def ids(items: list[dict[str, Any]]) -> list[int]:
    return [item["id"] for item in items]


def at(minutes: int) -> dt.datetime:
    return START + dt.timedelta(minutes=minutes)


FACTORIES: dict[str, Callable[..., Any]] = {
    "customers": CustomerFactory,
    "contacts": ContactFactory,
    "cases": SupportCaseFactory,
    "opportunities": OpportunityFactory,
    "orders": OrderFactory,
    "products": ProductFactory,
    "agreements": AgreementFactory,
}


@pytest.mark.parametrize("kind", sorted(LISTINGS))
def test_every_list_pages_by_last_change_then_id_and_takes_updated_since(
    session: Session, kind: str
) -> None:
    make = FACTORIES[kind]
    # Pairs share a timestamp, so the id must break ties; made out of order on purpose.
    rows = [make(updated_at=at(minutes)) for minutes in (3, 0, 1, 0, 2, 1, 3)]
    mine = {row.id for row in rows}
    listed = [item for item in walk(session, kind) if item["id"] in mine]
    expected = sorted(rows, key=lambda r: (r.updated_at, r.id))
    assert ids(listed) == [r.id for r in expected]
    since = walk(session, kind, updated_since=at(2).isoformat())
    assert ids(since) == [r.id for r in expected if r.updated_at >= at(2)]


def test_rows_changed_between_pages_come_again_at_the_end_and_none_is_missed(
    session: Session,
) -> None:
    cases = [SupportCaseFactory(updated_at=at(n), status="open") for n in range(6)]
    first = list_entities(
        session, kind="cases", params={"updated_since": at(0).isoformat()}, cursor=None, limit=2
    )
    assert ids(first.items) == [cases[0].id, cases[1].id]
    # One already seen and one not yet seen change while the client pages.
    cases[0].status = "pending"
    cases[3].status = "pending"
    session.flush()
    assert cases[3].updated_at > at(5)
    rest, cursor = [], first.next
    while cursor:
        page = list_entities(
            session,
            kind="cases",
            params={"updated_since": at(0).isoformat()},
            cursor=cursor,
            limit=2,
        )
        rest.extend(page.items)
        cursor = page.next
    seen = first.items + rest
    assert ids(seen) == [c.id for c in cases[:3]] + [cases[4].id, cases[5].id] + sorted(
        [cases[0].id, cases[3].id]
    )
    last = {item["id"]: item for item in seen}
    assert last[cases[0].id]["status"] == last[cases[3].id]["status"] == "pending"
    # The next sync, from the last change seen (inclusive), brings only what changed since.
    again = walk(session, "cases", updated_since=seen[-1]["updated_at"])
    assert seen[-1]["id"] in ids(again)
    assert set(ids(again)) <= {cases[0].id, cases[3].id}


def test_case_filters(session: Session) -> None:
    now = dt.datetime.now(dt.UTC)
    late = SupportCaseFactory(
        status="open", priority="high", assignee="ann", first_response_due_at=now - dt.timedelta(1)
    )
    answered_late = SupportCaseFactory(
        status="pending",
        assignee="bob",
        first_response_due_at=now - dt.timedelta(days=2),
        first_responded_at=now - dt.timedelta(days=1),
    )
    on_time = SupportCaseFactory(
        status="open", assignee="ann", first_response_due_at=now + dt.timedelta(1)
    )
    no_sla = SupportCaseFactory(status="closed", priority="low")
    assert ids(walk(session, "cases", status="open", assignee="ann")) == [late.id, on_time.id]
    assert ids(walk(session, "cases", status="open,pending")) == [
        late.id,
        answered_late.id,
        on_time.id,
    ]
    assert ids(walk(session, "cases", priority="high")) == [late.id]
    assert ids(walk(session, "cases", sla_breached="true")) == [late.id, answered_late.id]
    assert ids(walk(session, "cases", sla_breached="false")) == [on_time.id, no_sla.id]
    assert ids(walk(session, "cases", customer_id=str(no_sla.customer_id))) == [no_sla.id]


def test_the_other_lists_filters(session: Session) -> None:
    customer = CustomerFactory(kind="person", lifecycle_stage="customer", owner="ann")
    CustomerFactory()
    assert ids(walk(session, "customers", kind="person", owner="ann")) == [customer.id]
    assert ids(walk(session, "customers", lifecycle_stage="customer")) == [customer.id]

    contact = ContactFactory(customer=customer)
    ContactFactory()
    assert ids(walk(session, "contacts", customer_id=str(customer.id))) == [contact.id]

    won = OpportunityFactory(stage="won", owner="ann")
    OpportunityFactory(stage="won", owner="bob")
    OpportunityFactory(stage="new", owner="ann")
    assert ids(walk(session, "opportunities", stage="won", owner="ann")) == [won.id]

    paid = OrderFactory(status="paid", customer_id=customer.id)
    OrderFactory(status="paid")
    OrderFactory(customer_id=customer.id)
    assert ids(walk(session, "orders", status="paid", customer_id=str(customer.id))) == [paid.id]

    service = ProductFactory(kind="service", active=False)
    ProductFactory()
    assert ids(walk(session, "products", kind="service", active="false")) == [service.id]

    ended = AgreementFactory(status="terminated", customer_id=customer.id)
    AgreementFactory(customer_id=customer.id)
    assert ids(walk(session, "agreements", status="terminated")) == [ended.id]


@pytest.mark.parametrize(
    ("kind", "params", "field"),
    [
        ("cases", {"status": "opne"}, "status"),
        ("cases", {"priority": ""}, "priority"),
        ("cases", {"sla_breached": "maybe"}, "sla_breached"),
        ("cases", {"customer_id": "-3"}, "customer_id"),
        ("cases", {"customer_id": str(2**63)}, "customer_id"),
        ("orders", {"updated_since": "yesterday"}, "updated_since"),
        ("products", {"active": "2"}, "active"),
        ("contacts", {"stage": "won"}, "stage"),
        ("customers", {"owner": " "}, "owner"),
    ],
)
def test_bad_filters_are_field_errors_naming_the_parameter(
    session: Session, kind: str, params: dict[str, str], field: str
) -> None:
    with pytest.raises(InvalidInput) as raised:
        list_entities(session, kind=kind, params=params, cursor=None, limit=10)
    assert [e.field for e in raised.value.errors] == [field]


def test_every_bad_parameter_is_named_at_once(session: Session) -> None:
    with pytest.raises(InvalidInput) as raised:
        list_entities(
            session,
            kind="cases",
            params={"status": "x", "assignee": "ann", "updated_since": "soon"},
            cursor=None,
            limit=10,
        )
    assert sorted(e.field for e in raised.value.errors) == ["status", "updated_since"]


def test_updated_since_reads_offsets_a_z_and_a_plus_sent_unencoded(session: Session) -> None:
    case = SupportCaseFactory(updated_at=at(60))
    for written in ("2026-01-01T00:30:00Z", "2026-01-01T01:30:00 01:00", "2026-01-01T00:30"):
        assert case.id in ids(walk(session, "cases", updated_since=written)), written
    assert ids(walk(session, "cases", updated_since="2026-01-01T02:00:01+01:00")) == []


def test_a_core_update_moves_updated_at_as_the_orm_does(session: Session) -> None:
    customer = CustomerFactory()
    old = ContactFactory(customer=customer, is_primary=True, updated_at=at(0))
    new = ContactFactory(customer=customer, updated_at=at(0))
    set_primary_contact(session, contact=new)
    session.expire_all()
    stamps = dict(session.execute(select(m.Contact.id, m.Contact.updated_at)).all())
    assert stamps[old.id] > at(0)
    assert stamps[new.id] > at(0)
