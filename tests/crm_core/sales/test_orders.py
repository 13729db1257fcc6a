"""Orders: products by SKU, orders by (source, number), exact totals, one Activity."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from crm_core import models as m
from crm_core.errors import InvalidInput
from crm_core.ingestion.commands import order_command
from crm_core.payloads.schemas import OrderPayload
from crm_core.sales.commands import OrderCommand
from crm_core.sales.services import order_total, record_order
from tests.factories import ContactFactory, SourceFactory


def payload(**overrides: object) -> OrderCommand:
    data: dict[str, object] = {
        "order_number": "1001",
        "email": "buyer@example.com",
        "currency": "eur",
        "lines": [
            {"sku": "TSHIRT-M", "name": "T-shirt M", "quantity": 3, "unit_price": "19.99"},
            {"sku": "MUG", "quantity": 1, "unit_price": "0.10"},
        ],
    }
    data.update(overrides)
    return order_command(OrderPayload.model_validate(data))


def count(session: Session, model: type) -> int:
    return session.scalar(select(func.count()).select_from(model))


def test_total_is_exact_decimal_arithmetic() -> None:
    lines = payload(lines=[{"sku": "A", "quantity": 3, "unit_price": "0.10"}]).lines
    assert order_total(lines) == Decimal("0.30")


def test_order_is_stored_with_lines_products_and_an_activity(session: Session) -> None:
    source, buyer = SourceFactory(), ContactFactory()
    touched = record_order(
        session, source_id=source.id, event_id=None, buyer=buyer, order=payload()
    )
    order = session.scalars(select(m.Order)).one()
    assert (order.order_number, order.currency, order.total) == ("1001", "EUR", Decimal("60.07"))
    assert [(line.line_no, line.quantity, line.line_total) for line in order.lines] == [
        (1, 3, Decimal("59.97")),
        (2, 1, Decimal("0.10")),
    ]
    assert {p.sku for p in session.scalars(select(m.Product))} == {"TSHIRT-M", "MUG"}
    activity = session.scalars(select(m.Activity)).one()
    assert (activity.type, activity.order_id, activity.contact_id) == (
        "order_placed",
        order.id,
        buyer.id,
    )
    assert buyer.customer.lifecycle_stage == "customer"
    assert ("order", order.id) in touched
    assert ("activity", activity.id) in touched


def test_redelivered_order_changes_nothing_and_adds_no_activity(session: Session) -> None:
    source, buyer = SourceFactory(), ContactFactory()
    for _ in range(2):
        record_order(session, source_id=source.id, event_id=None, buyer=buyer, order=payload())
    assert (count(session, m.Order), count(session, m.OrderLine), count(session, m.Activity)) == (
        1,
        2,
        1,
    )


def test_an_amended_order_replaces_its_lines(session: Session) -> None:
    source, buyer = SourceFactory(), ContactFactory()
    record_order(session, source_id=source.id, event_id=None, buyer=buyer, order=payload())
    amended = payload(lines=[{"sku": "MUG", "quantity": 5, "unit_price": "2.00"}])
    record_order(session, source_id=source.id, event_id=None, buyer=buyer, order=amended)
    order = session.scalars(select(m.Order)).one()
    session.refresh(order)
    assert order.total == Decimal("10.00")
    assert [(line.quantity, line.product.sku) for line in order.lines] == [(5, "MUG")]


def test_a_stated_total_must_match_the_lines(session: Session) -> None:
    source, buyer = SourceFactory(), ContactFactory()
    with pytest.raises(InvalidInput) as raised:
        record_order(
            session, source_id=source.id, event_id=None, buyer=buyer, order=payload(total="60.00")
        )
    assert raised.value.errors[0].loc == ("total",)
    assert "60.07" in raised.value.errors[0].msg
    assert count(session, m.Order) == 0


def test_a_matching_total_is_accepted(session: Session) -> None:
    source, buyer = SourceFactory(), ContactFactory()
    order = payload(total="60.07")
    record_order(session, source_id=source.id, event_id=None, buyer=buyer, order=order)
    assert count(session, m.Order) == 1


def test_existing_products_are_reused_by_sku(session: Session) -> None:
    source, buyer = SourceFactory(), ContactFactory()
    record_order(session, source_id=source.id, event_id=None, buyer=buyer, order=payload())
    record_order(
        session, source_id=source.id, event_id=None, buyer=buyer, order=payload(order_number="2")
    )
    assert count(session, m.Product) == 2
    assert count(session, m.Order) == 2


BREAKDOWN = {
    "subtotal": "60.07",
    "discount_total": "6.00",
    "tax_total": "4.32",
    "shipping_total": "5.00",
    "total": "63.39",
}


def test_an_order_with_discount_tax_and_shipping_adds_up(session: Session) -> None:
    source, buyer = SourceFactory(), ContactFactory()
    record_order(
        session, source_id=source.id, event_id=None, buyer=buyer, order=payload(**BREAKDOWN)
    )
    order = session.scalars(select(m.Order)).one()
    amounts = (order.subtotal, order.discount_total, order.tax_total, order.shipping_total)
    assert amounts == (Decimal("60.07"), Decimal("6.00"), Decimal("4.32"), Decimal("5.00"))
    assert order.total == Decimal("63.39")


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({**BREAKDOWN, "total": "63.40"}, "total"),
        ({**BREAKDOWN, "subtotal": "60.00"}, "subtotal"),
        ({"discount_total": "70.00"}, "discount_total"),
        ({"total": "63.39", "tax_total": "3.31"}, "total"),
    ],
)
def test_amounts_that_do_not_add_up_to_the_cent_are_refused(
    session: Session, overrides: dict[str, str], field: str
) -> None:
    source, buyer = SourceFactory(), ContactFactory()
    with pytest.raises(InvalidInput) as caught:
        record_order(
            session, source_id=source.id, event_id=None, buyer=buyer, order=payload(**overrides)
        )
    assert field in [error.field for error in caught.value.errors]
    assert count(session, m.Order) == 0


def test_without_a_breakdown_the_total_is_the_lines_sum(session: Session) -> None:
    source, buyer = SourceFactory(), ContactFactory()
    record_order(session, source_id=source.id, event_id=None, buyer=buyer, order=payload())
    order = session.scalars(select(m.Order)).one()
    assert (order.subtotal, order.discount_total, order.total) == (
        Decimal("60.07"),
        Decimal("0"),
        Decimal("60.07"),
    )
    assert order.status == "placed"


def test_a_status_change_is_an_activity_and_a_repeat_is_not(session: Session) -> None:
    source, buyer = SourceFactory(), ContactFactory()
    for status in ("paid", "paid", "refunded"):
        record_order(
            session,
            source_id=source.id,
            event_id=None,
            buyer=buyer,
            order=payload(status=status),
        )
    order = session.scalars(select(m.Order)).one()
    assert order.status == "refunded"
    changes = session.scalars(
        select(m.Activity.details).where(m.Activity.type == "order_status_changed")
    ).all()
    assert changes == [{"from": "paid", "to": "refunded"}]


def test_an_update_older_than_the_stored_one_changes_nothing_and_says_so(
    session: Session,
) -> None:
    source, buyer = SourceFactory(), ContactFactory()

    def send(status: str, updated_at: str, event_id: int | None = None) -> None:
        order = payload(status=status, updated_at=updated_at)
        record_order(session, source_id=source.id, event_id=event_id, buyer=buyer, order=order)

    send("placed", "2026-11-30T10:00:00Z")
    send("fulfilled", "2026-11-30T12:00:00Z")
    send("paid", "2026-11-30T11:00:00+00:00")  # delivered late
    send("paid", "2026-11-30T11:00:00+00:00")  # and again
    order = session.scalars(select(m.Order)).one()
    assert order.status == "fulfilled"
    stale = session.scalars(select(m.Activity).where(m.Activity.type == "stale_update")).all()
    assert len(stale) == 2
    assert stale[0].details["status"] == "paid"
    changes = session.scalars(
        select(m.Activity.details).where(m.Activity.type == "order_status_changed")
    ).all()
    assert changes == [{"from": "placed", "to": "fulfilled"}]
