"""WooCommerce order and customer webhooks become orders and contacts."""

from __future__ import annotations

import copy
from decimal import Decimal

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from crm_core import models as m
from crm_core.providers.woocommerce_mapping import order_status
from tests.crm_core.providers.mapped_events import fixture, linked, run_provider_event
from tests.factories import SourceFactory

ORDER = fixture("woocommerce", "order_created.json")
WITH_FEES = fixture("woocommerce", "order_with_fees.json")
CUSTOMER = fixture("woocommerce", "customer_created.json")


def run(session: Session, topic: str, document: dict, **fields: object) -> m.InboxEvent:
    kind = "leads" if topic.startswith("customer.") else "orders"
    return run_provider_event(
        session, provider="woocommerce", kind=kind, topic=topic, document=document, **fields
    )


def test_an_order_with_a_coupon_tax_and_shipping_is_stored(session: Session) -> None:
    event = run(session, "order.created", ORDER)
    assert event.status == "processed", event.errors
    order = session.get(m.Order, linked(event, "order")[0])
    assert (order.order_number, order.currency, order.status) == ("727", "EUR", "paid")
    amounts = (
        order.subtotal,
        order.discount_total,
        order.tax_total,
        order.shipping_total,
        order.total,
    )
    assert amounts == tuple(Decimal(a) for a in ("40.00", "5.00", "6.65", "4.90", "46.55"))
    [line] = order.lines
    assert (line.product.sku, line.quantity, line.unit_price) == ("COF-ESP-1KG", 2, Decimal("20"))
    buyer = session.get(m.Contact, order.contact_id)
    assert buyer.email_normalized == "grace.hopper@example.org"


def test_an_update_moves_the_order_and_says_so(session: Session) -> None:
    source = SourceFactory(provider="woocommerce")
    run(session, "order.created", ORDER, source=source)
    event = run(session, "order.updated", {**ORDER, "status": "completed"}, source=source)
    assert event.status == "processed", event.errors
    order = session.scalars(select(m.Order)).one()
    assert order.status == "fulfilled"
    assert linked(event, "activity")


def test_a_line_subtotal_that_is_not_money_names_the_woocommerce_field(session: Session) -> None:
    document = copy.deepcopy(ORDER)
    document["line_items"][0]["subtotal"] = "lots"
    event = run(session, "order.created", document)
    assert event.status == "invalid"
    assert [error["field"] for error in event.errors] == ["line_items.0.subtotal"]


def test_a_total_that_does_not_add_up_is_invalid(session: Session) -> None:
    event = run(session, "order.created", {**ORDER, "total": "50.00"})
    assert event.status == "invalid"
    assert [error["field"] for error in event.errors] == ["total"]


def test_a_customer_becomes_a_contact_of_its_company(session: Session) -> None:
    event = run(session, "customer.created", CUSTOMER)
    assert event.status == "processed", event.errors
    contact = session.get(m.Contact, linked(event, "contact")[0])
    assert (contact.email_normalized, contact.last_name, contact.phone, contact.country) == (
        "grace.hopper@example.org",
        "Hopper",
        "+4930901820",
        "DE",
    )
    assert contact.customer.name == "Harvard Computation Lab"


@pytest.mark.parametrize(
    ("fields", "status"),
    [
        ({"status": "pending"}, "placed"),
        ({"status": "processing"}, "paid"),
        ({"status": "completed"}, "fulfilled"),
        ({"status": "completed", "refunds": [{"id": 1, "total": "-5.00"}]}, "partially_refunded"),
        ({"status": "refunded", "refunds": [{"id": 1, "total": "-46.55"}]}, "refunded"),
        ({"status": "cancelled"}, "cancelled"),
        ({"status": "checkout-draft"}, "placed"),
    ],
)
def test_the_status_follows_woocommerce_s(fields: dict, status: str) -> None:
    assert order_status(fields) == status


def test_fees_are_lines_of_what_the_buyer_is_charged(session: Session) -> None:
    event = run(session, "order.created", WITH_FEES)
    assert event.status == "processed", event.errors
    order = session.get(m.Order, linked(event, "order")[0])
    amounts = (order.subtotal, order.discount_total, order.tax_total, order.total)
    assert amounts == tuple(Decimal(a) for a in ("43.00", "5.00", "7.22", "50.12"))
    fee = order.lines[-1]
    assert (fee.product.sku, fee.description, fee.quantity, fee.unit_price) == (
        "woocommerce-fee",
        "Gift wrapping",
        1,
        Decimal("3.00"),
    )


def test_a_negative_fee_is_a_discount(session: Session) -> None:
    document = copy.deepcopy(WITH_FEES)
    document["fee_lines"].append({"id": 95, "name": "Loyalty credit", "total": "-2.00"})
    document["total"] = "48.12"
    event = run(session, "order.created", document)
    assert event.status == "processed", event.errors
    order = session.get(m.Order, linked(event, "order")[0])
    assert (order.discount_total, order.total, len(order.lines)) == (
        Decimal("7.00"),
        Decimal("48.12"),
        2,
    )


def test_a_fee_that_is_not_money_names_the_woocommerce_field(session: Session) -> None:
    document = copy.deepcopy(WITH_FEES)
    document["fee_lines"][0]["total"] = "3.001"
    event = run(session, "order.created", document)
    assert event.status == "invalid"
    assert "fee_lines.0.total" in [error["field"] for error in event.errors]
