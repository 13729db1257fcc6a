"""Refunds from Shopify (a Refund resource) and Stripe (a refunded Charge) mark the order they
belong to refunded or partly refunded, once each, and say so on the order's timeline."""

from __future__ import annotations

import copy
import json
from decimal import Decimal

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from crm_core import models as m
from crm_core.config import get_settings
from crm_core.errors import TransientError
from crm_core.ingestion import processing, single_event
from crm_core.ingestion.policy import IngestPolicy
from tests.crm_core.providers.mapped_events import fixture, linked, run_provider_event
from tests.factories import InboxEventFactory, SourceFactory

SHOP_ORDER = fixture("shopify", "orders_create.json")
SHOP_REFUND = fixture("shopify", "refunds_create.json")
CHECKOUT = fixture("stripe", "checkout_session_completed.json")
INVOICE = fixture("stripe", "invoice_paid.json")
CHARGE_REFUNDED = fixture("stripe", "charge_refunded.json")


def run(session: Session, provider: str, topic: str, document: dict, source: m.Source):  # type: ignore[no-untyped-def]
    return run_provider_event(
        session, provider=provider, kind="orders", topic=topic, document=document, source=source
    )


def status_changes(session: Session) -> list[dict]:
    query = select(m.Activity.details).where(m.Activity.type == "order_status_changed")
    return list(session.scalars(query.order_by(m.Activity.id)))


def test_a_shopify_refund_of_one_line_partly_refunds_the_order(session: Session) -> None:
    source = SourceFactory(provider="shopify")
    run(session, "shopify", "orders/create", SHOP_ORDER, source)
    event = run(session, "shopify", "refunds/create", SHOP_REFUND, source)
    assert event.status == "processed", event.errors
    order = session.scalars(select(m.Order)).one()
    assert linked(event, "order") == [order.id]
    assert (order.status, order.refunded_total) == ("partially_refunded", Decimal("14.58"))
    [change] = status_changes(session)
    assert change["from"] == "paid"
    assert change["to"] == "partially_refunded"
    assert change["refund_id"] == "1018273645098"


def test_the_rest_refunded_later_refunds_the_order_and_a_redelivery_counts_once(
    session: Session,
) -> None:
    source = SourceFactory(provider="shopify")
    run(session, "shopify", "orders/create", SHOP_ORDER, source)
    run(session, "shopify", "refunds/create", SHOP_REFUND, source)
    # Shopify delivers the same refund again (a retry): it is not counted twice.
    run(session, "shopify", "refunds/create", SHOP_REFUND, source)
    order = session.scalars(select(m.Order)).one()
    assert order.refunded_total == Decimal("14.58")
    rest = copy.deepcopy(SHOP_REFUND)
    rest["id"] = 1018273645099
    rest["transactions"][0]["amount"] = "52.63"
    event = run(session, "shopify", "refunds/create", rest, source)
    assert event.status == "processed", event.errors
    session.refresh(order)
    assert (order.status, order.refunded_total) == ("refunded", Decimal("67.21"))
    assert [c["to"] for c in status_changes(session)] == ["partially_refunded", "refunded"]


def test_a_refund_without_money_back_changes_no_status(session: Session) -> None:
    source = SourceFactory(provider="shopify")
    run(session, "shopify", "orders/create", SHOP_ORDER, source)
    restock_only = {**SHOP_REFUND, "transactions": []}
    assert run(session, "shopify", "refunds/create", restock_only, source).status == "processed"
    assert session.scalars(select(m.Order.status)).one() == "paid"


def test_a_refund_before_its_order_is_retried(session: Session) -> None:
    source = SourceFactory(provider="shopify")
    event = InboxEventFactory(
        source=source, kind="orders", topic="refunds/create", body=json.dumps(SHOP_REFUND).encode()
    )
    assert processing.claim_event(session, event_id=event.id)
    with pytest.raises(TransientError, match="has not arrived yet"):
        single_event.run_event(
            session, event_id=event.id, policy=IngestPolicy.from_settings(get_settings())
        )


@pytest.mark.parametrize(
    ("order", "topic"),
    [(CHECKOUT, "checkout.session.completed"), (INVOICE, "invoice.paid")],
    ids=["checkout session", "invoice"],
)
def test_a_refunded_stripe_charge_finds_its_order_by_payment(
    session: Session, order: dict, topic: str
) -> None:
    source = SourceFactory(provider="stripe")
    assert run(session, "stripe", topic, order, source).status == "processed"
    charge = copy.deepcopy(CHARGE_REFUNDED)
    paid = session.scalars(select(m.Order)).one()
    if topic == "invoice.paid":
        charge["data"]["object"].update(
            payment_intent=None, invoice=INVOICE["data"]["object"]["id"], currency="eur"
        )
    event = run(session, "stripe", "charge.refunded", charge, source)
    assert event.status == "processed", event.errors
    session.refresh(paid)
    assert (paid.status, paid.refunded_total) == ("partially_refunded", Decimal("14.58"))
    # The whole charge refunded later: Stripe states the running total and `refunded`.
    whole = charge["data"]["object"]["amount"]
    charge["data"]["object"].update(amount_refunded=whole, refunded=True)
    assert run(session, "stripe", "charge.refunded", charge, source).status == "processed"
    session.refresh(paid)
    assert paid.status == "refunded"
    assert [c["to"] for c in status_changes(session)][-2:] == ["partially_refunded", "refunded"]


def test_a_refund_in_another_currency_is_refused_by_stripe_s_name(session: Session) -> None:
    source = SourceFactory(provider="stripe")
    run(session, "stripe", "checkout.session.completed", CHECKOUT, source)
    charge = copy.deepcopy(CHARGE_REFUNDED)
    charge["data"]["object"]["currency"] = "eur"
    event = run(session, "stripe", "charge.refunded", charge, source)
    assert event.status == "invalid"
    assert [e["field"] for e in event.errors] == ["data.object.currency"]
