"""Stripe checkout sessions and paid invoices become orders; customers become contacts."""

from __future__ import annotations

import copy
from decimal import Decimal

import pytest
from sqlalchemy.orm import Session

from crm_core import models as m
from crm_core.providers.stripe_mapping import money
from tests.crm_core.providers.mapped_events import fixture, linked, run_provider_event

CHECKOUT = fixture("stripe", "checkout_session_completed.json")
INVOICE = fixture("stripe", "invoice_paid.json")
CUSTOMER = fixture("stripe", "customer_created.json")


def run(session: Session, document: dict) -> m.InboxEvent:
    topic = document["type"]
    kind = "leads" if topic.startswith("customer.") else "orders"
    return run_provider_event(session, provider="stripe", kind=kind, topic=topic, document=document)


def amounts(order: m.Order) -> tuple[Decimal, ...]:
    return (
        order.subtotal,
        order.discount_total,
        order.tax_total,
        order.shipping_total,
        order.total,
    )


def test_a_completed_checkout_is_a_paid_order_in_major_units(session: Session) -> None:
    event = run(session, CHECKOUT)
    assert event.status == "processed", event.errors
    order = session.get(m.Order, linked(event, "order")[0])
    assert (order.currency, order.status) == ("USD", "paid")
    assert order.order_number == CHECKOUT["data"]["object"]["id"]
    assert amounts(order) == tuple(Decimal(a) for a in ("64.00", "6.40", "4.61", "5.00", "67.21"))
    [line] = order.lines
    assert (line.product.sku, line.quantity, line.unit_price) == (
        "stripe-checkout",
        1,
        Decimal("64.00"),
    )
    buyer = session.get(m.Contact, order.contact_id)
    assert buyer.email_normalized == "ada.lovelace@example.com"


def test_expanded_line_items_are_the_order_s_lines(session: Session) -> None:
    document = copy.deepcopy(CHECKOUT)
    document["data"]["object"]["line_items"] = {
        "object": "list",
        "data": [
            {"id": "li_1", "amount_subtotal": 4900, "quantity": 2, "price": {"id": "price_tea"}},
            {"id": "li_2", "amount_subtotal": 1500, "quantity": 1, "price": {"id": "price_pot"}},
        ],
    }
    event = run(session, document)
    assert event.status == "processed", event.errors
    order = session.get(m.Order, linked(event, "order")[0])
    assert [(line.product.sku, line.quantity, line.unit_price) for line in order.lines] == [
        ("price_tea", 2, Decimal("24.50")),
        ("price_pot", 1, Decimal("15.00")),
    ]


def test_a_zero_decimal_currency_is_not_divided(session: Session) -> None:
    document = copy.deepcopy(CHECKOUT)
    session_object = document["data"]["object"]
    session_object.update(currency="jpy", amount_subtotal=1200, amount_total=1200)
    session_object["total_details"] = {"amount_discount": 0, "amount_shipping": 0, "amount_tax": 0}
    event = run(session, document)
    assert event.status == "processed", event.errors
    order = session.get(m.Order, linked(event, "order")[0])
    assert (order.currency, order.total) == ("JPY", Decimal("1200"))


@pytest.mark.parametrize(
    ("amount", "currency", "value"),
    [
        (6721, "usd", Decimal("67.21")),
        (1200, "JPY", Decimal("1200")),
        (12340, "kwd", Decimal("12.34")),
        (12345, "kwd", Decimal("12.345")),
    ],
)
def test_minor_units_follow_the_currency_s_exponent(
    amount: int, currency: str, value: Decimal
) -> None:
    assert money(amount, currency) == value


def test_an_amount_in_a_third_decimal_place_is_refused_by_name(session: Session) -> None:
    document = copy.deepcopy(CHECKOUT)
    document["data"]["object"].update(currency="kwd", amount_total=6725)
    event = run(session, document)
    assert event.status == "invalid"
    assert "data.object.amount_total" in [error["field"] for error in event.errors]


def test_a_paid_invoice_is_a_paid_order_with_its_lines(session: Session) -> None:
    event = run(session, INVOICE)
    assert event.status == "processed", event.errors
    order = session.get(m.Order, linked(event, "order")[0])
    assert (order.order_number, order.currency, order.status) == ("F4A1C2D3-0007", "EUR", "paid")
    assert amounts(order) == tuple(Decimal(a) for a in ("50.00", "5.00", "8.55", "0", "53.55"))
    [line] = order.lines
    assert (line.product.sku, line.quantity, line.unit_price) == (
        "price_1Nv0Ko2eZvKYlo2CTeamPlan",
        2,
        Decimal("25.00"),
    )


def test_an_invoice_total_that_does_not_add_up_names_stripe_s_field(session: Session) -> None:
    document = copy.deepcopy(INVOICE)
    document["data"]["object"]["total"] = 5356
    event = run(session, document)
    assert event.status == "invalid"
    assert [error["field"] for error in event.errors] == ["data.object.total"]


def test_a_customer_becomes_a_contact(session: Session) -> None:
    event = run(session, CUSTOMER)
    assert event.status == "processed", event.errors
    contact = session.get(m.Contact, linked(event, "contact")[0])
    assert (contact.email_normalized, contact.full_name, contact.phone) == (
        "ada.lovelace@example.com",
        "Ada Lovelace",
        "+12125550142",
    )
