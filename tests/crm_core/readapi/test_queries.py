"""The read side: plain serializations, keyset pages, clean errors for bad cursors."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy.orm import Session

from crm_core import models as m
from crm_core.base.pagination import decode_cursor, parse_limit
from crm_core.errors import InvalidInput
from crm_core.readapi.queries import customer_timeline, find_contacts, get_customer, get_order
from tests.factories import ContactFactory, CustomerFactory, OrderFactory, ProductFactory


def add_activities(session: Session, customer: m.Customer, count: int) -> list[m.Activity]:
    start = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    activities = [
        m.Activity(
            type="note",
            summary=f"note {n}",
            customer_id=customer.id,
            # Pairs share a timestamp, so the id must break ties.
            occurred_at=start + dt.timedelta(minutes=n // 2),
        )
        for n in range(count)
    ]
    session.add_all(activities)
    session.flush()
    return activities


def test_timeline_pages_newest_first_without_gaps_or_repeats(session: Session) -> None:
    customer = CustomerFactory()
    activities = add_activities(session, customer, 7)
    seen, cursor = [], None
    while True:
        page = customer_timeline(session, customer_id=customer.id, cursor=cursor, limit=3)
        seen.extend(item["id"] for item in page.items)
        if page.next is None:
            break
        cursor = page.next
    expected = sorted(activities, key=lambda a: (a.occurred_at, a.id), reverse=True)
    assert seen == [a.id for a in expected]


def test_timeline_of_an_unknown_customer_is_none(session: Session) -> None:
    assert customer_timeline(session, customer_id=10**9, cursor=None, limit=3) is None


@pytest.mark.parametrize("cursor", ["garbage", "W10", "WyJ4Il0", "!!!", "eyJhIjoxfQ"])
def test_a_cursor_we_did_not_make_is_a_field_error(cursor: str) -> None:
    with pytest.raises(InvalidInput) as raised:
        decode_cursor(cursor, length=2)
    assert raised.value.errors[0].loc == ("cursor",)


@pytest.mark.parametrize("raw", ["0", "-1", "201", "ten", "1.5"])
def test_limits_outside_the_range_are_refused(raw: str) -> None:
    with pytest.raises(InvalidInput):
        parse_limit(raw)


def test_contacts_are_found_by_normalized_email(session: Session) -> None:
    contact = ContactFactory(email="Ann@Example.com", email_normalized="ann@example.com")
    ContactFactory()
    page = find_contacts(session, email="  ANN@example.COM ", cursor=None, limit=10)
    assert [item["id"] for item in page.items] == [contact.id]
    assert page.items[0]["customer_id"] == contact.customer_id
    assert "email_normalized" not in page.items[0]


def test_customer_lists_its_primary_contact_first(session: Session) -> None:
    customer = CustomerFactory()
    other = ContactFactory(customer=customer)
    primary = ContactFactory(customer=customer, is_primary=True)
    shown = get_customer(session, customer_id=customer.id)
    assert shown["primary_contact_id"] == primary.id
    assert [c["id"] for c in shown["contacts"]] == [primary.id, other.id]
    assert [c["is_primary"] for c in shown["contacts"]] == [True, False]


def test_order_shows_lines_with_skus_and_exact_total(session: Session) -> None:
    from decimal import Decimal

    order = OrderFactory(total=Decimal("20.20"))
    product = ProductFactory(sku="ABC")
    session.add(
        m.OrderLine(
            order_id=order.id,
            product_id=product.id,
            line_no=1,
            quantity=2,
            unit_price=Decimal("10.10"),
            line_total=Decimal("20.20"),
        )
    )
    session.flush()
    session.expire_all()
    shown = get_order(session, order_id=order.id)
    assert shown["total"] == "20.20"
    assert [(line["sku"], line["quantity"], line["unit_price"]) for line in shown["lines"]] == [
        ("ABC", 2, "10.10")
    ]


def test_order_shows_its_breakdown_and_status(session: Session) -> None:
    from decimal import Decimal

    order = OrderFactory(
        subtotal=Decimal("64.00"),
        discount_total=Decimal("6.40"),
        tax_total=Decimal("4.61"),
        shipping_total=Decimal("5.00"),
        total=Decimal("67.21"),
        status="partially_refunded",
    )
    session.expire_all()
    shown = get_order(session, order_id=order.id)
    assert {
        key: shown[key]
        for key in ("subtotal", "discount_total", "tax_total", "shipping_total", "total", "status")
    } == {
        "subtotal": "64.00",
        "discount_total": "6.40",
        "tax_total": "4.61",
        "shipping_total": "5.00",
        "total": "67.21",
        "status": "partially_refunded",
    }
