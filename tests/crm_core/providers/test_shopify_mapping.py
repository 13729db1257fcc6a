"""Shopify order webhooks become orders with their real totals and status."""

from __future__ import annotations

import copy
import datetime as dt
import json
from decimal import Decimal

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from crm_core import models as m
from crm_core.config import get_settings
from crm_core.ingestion import processing, single_event
from crm_core.ingestion.policy import IngestPolicy
from crm_core.providers import shopify_mapping
from crm_core.providers.shopify_mapping import order_status
from tests.crm_core.providers.mapped_events import fixture, linked, run_provider_event
from tests.factories import SourceFactory

ORDER = fixture("shopify", "orders_create.json")


def run(session: Session, topic: str, document: dict, **fields: object) -> m.InboxEvent:
    return run_provider_event(
        session, provider="shopify", kind="orders", topic=topic, document=document, **fields
    )


def test_a_real_order_with_tax_shipping_and_a_discount_is_stored(session: Session) -> None:
    event = run(session, "orders/create", ORDER)
    assert event.status == "processed", event.errors
    [order_id] = linked(event, "order")
    order = session.get(m.Order, order_id)
    assert (order.order_number, order.currency, order.status) == ("#1042", "USD", "paid")
    amounts = (
        order.subtotal,
        order.discount_total,
        order.tax_total,
        order.shipping_total,
        order.total,
    )
    assert amounts == tuple(Decimal(a) for a in ("64.00", "6.40", "4.61", "5.00", "67.21"))
    assert [(line.product.sku, line.quantity, line.unit_price) for line in order.lines] == [
        ("TEA-GRN-100", 2, Decimal("24.50")),
        ("ACC-STR-01", 1, Decimal("15.00")),
    ]
    when = order.ordered_at
    assert (when if when.tzinfo else when.replace(tzinfo=dt.UTC)) == dt.datetime(
        2026, 11, 30, 15, 14, 2, tzinfo=dt.UTC
    )
    buyer = session.get(m.Contact, order.contact_id)
    assert buyer.email_normalized == "ada.lovelace@example.com"


def test_a_price_that_is_not_money_is_named_as_shopify_names_it(session: Session) -> None:
    document = copy.deepcopy(ORDER)
    document["line_items"][1]["price"] = "fifteen"
    event = run(session, "orders/create", document)
    assert event.status == "invalid"
    assert [error["field"] for error in event.errors] == ["line_items.1.price"]
    assert session.scalars(select(m.Order)).first() is None


def test_totals_that_do_not_add_up_name_the_shopify_field(session: Session) -> None:
    document = copy.deepcopy(ORDER)
    document["total_price"] = "67.22"
    event = run(session, "orders/create", document)
    assert event.status == "invalid"
    assert [error["field"] for error in event.errors] == ["total_price"]


def test_an_invalid_event_replays_once_the_sender_data_is_right(session: Session) -> None:
    document = copy.deepcopy(ORDER)
    del document["currency"]
    event = run(session, "orders/create", document)
    assert [error["field"] for error in event.errors] == ["currency"]
    event.body = json.dumps(ORDER).encode()
    processing.replay_event(session, event_id=event.id)
    assert processing.claim_event(session, event_id=event.id)
    single_event.run_event(
        session, event_id=event.id, policy=IngestPolicy.from_settings(get_settings())
    )
    session.refresh(event)
    assert event.status == "processed"


def test_later_topics_move_the_order_and_say_so(session: Session) -> None:
    source = SourceFactory(provider="shopify")
    run(session, "orders/create", ORDER, source=source)
    cancelled = {**ORDER, "cancelled_at": "2026-12-01T09:00:00-05:00", "financial_status": "voided"}
    event = run(session, "orders/cancelled", cancelled, source=source)
    order = session.scalars(select(m.Order)).one()
    assert order.status == "cancelled"
    [activity_id] = linked(event, "activity")
    activity = session.get(m.Activity, activity_id)
    assert (activity.type, activity.details) == (
        "order_status_changed",
        {"from": "paid", "to": "cancelled"},
    )


def test_a_line_without_a_sku_is_keyed_by_its_variant(session: Session) -> None:
    document = copy.deepcopy(ORDER)
    document["line_items"][0]["sku"] = None
    event = run(session, "orders/create", document)
    assert event.status == "processed", event.errors
    skus = {line.product.sku for line in session.get(m.Order, linked(event, "order")[0]).lines}
    assert skus == {"shopify-variant-44501338882152", "ACC-STR-01"}


def test_a_topic_without_a_mapping_is_invalid_and_says_which(session: Session) -> None:
    event = run(session, "refunds/create", {"id": 1, "order_id": 5934528094312})
    assert event.status == "invalid"
    assert event.errors[0]["field"] == "topic"


@pytest.mark.parametrize(
    ("fields", "status"),
    [
        ({"financial_status": "pending"}, "placed"),
        ({"financial_status": "paid"}, "paid"),
        ({"financial_status": "paid", "fulfillment_status": "fulfilled"}, "fulfilled"),
        ({"financial_status": "partially_refunded"}, "partially_refunded"),
        ({"financial_status": "refunded", "fulfillment_status": "fulfilled"}, "refunded"),
        ({"financial_status": "paid", "cancelled_at": "2026-12-01T00:00:00Z"}, "cancelled"),
    ],
)
def test_the_status_follows_shopify_s_states(fields: dict, status: str) -> None:
    assert order_status(fields) == status


CUSTOMER = fixture("shopify", "customers_create.json")


def run_customer(session: Session, topic: str, document: dict, **fields: object) -> m.InboxEvent:
    return run_provider_event(
        session, provider="shopify", kind="leads", topic=topic, document=document, **fields
    )


def test_a_customer_becomes_a_contact_with_its_consent(session: Session) -> None:
    event = run_customer(session, "customers/create", CUSTOMER)
    assert event.status == "processed", event.errors
    [contact_id] = linked(event, "contact")
    contact = session.get(m.Contact, contact_id)
    assert (contact.email_normalized, contact.first_name, contact.phone) == (
        "ada.lovelace@example.com",
        "Ada",
        "+12125550142",
    )
    assert (contact.marketing_consent, contact.marketing_consent_method) == (
        "granted",
        "single_opt_in",
    )
    # 2026-11-30T10:13:40-05:00, Shopify's consent_updated_at, and the source that said it.
    assert contact.marketing_consent_at.astimezone(dt.UTC) == dt.datetime(
        2026, 11, 30, 15, 13, 40, tzinfo=dt.UTC
    )
    assert contact.marketing_consent_source_id == event.source_id
    assert "email_marketing_consent" not in contact.attributes
    assert contact.attributes["sms_marketing_consent"]["state"] == "not_subscribed"
    assert contact.customer.name == "Analytical Engines Ltd"


def test_a_customer_update_changes_the_consent_and_says_so(session: Session) -> None:
    source = SourceFactory(provider="shopify")
    run_customer(session, "customers/create", CUSTOMER, source=source)
    unsubscribed = copy.deepcopy(CUSTOMER)
    unsubscribed["email_marketing_consent"]["state"] = "unsubscribed"
    unsubscribed["email_marketing_consent"]["consent_updated_at"] = "2026-12-01T09:00:00Z"
    event = run_customer(session, "customers/update", unsubscribed, source=source)
    assert event.status == "processed", event.errors
    contact = session.scalars(select(m.Contact)).one()
    assert contact.marketing_consent == "denied"
    [activity_id] = linked(event, "activity")
    changes = session.get(m.Activity, activity_id).details["changes"]
    assert changes["marketing_consent"] == {"from": "granted", "to": "denied"}
    assert json.loads(json.dumps(changes))  # the Activity's details stay JSON


def test_an_older_consent_arriving_late_changes_nothing(session: Session) -> None:
    source = SourceFactory(provider="shopify")
    newer = copy.deepcopy(CUSTOMER)
    newer["email_marketing_consent"] = {
        "state": "unsubscribed",
        "opt_in_level": "single_opt_in",
        "consent_updated_at": "2026-12-02T09:00:00Z",
    }
    run_customer(session, "customers/update", newer, source=source)
    event = run_customer(session, "customers/create", CUSTOMER, source=source)
    assert event.status == "processed", event.errors
    contact = session.scalars(select(m.Contact)).one()
    assert contact.marketing_consent == "denied"
    assert contact.marketing_consent_at.astimezone(dt.UTC) == dt.datetime(
        2026, 12, 2, 9, tzinfo=dt.UTC
    )


@pytest.mark.parametrize(
    ("state", "status"),
    [
        ("subscribed", "granted"),
        ("unsubscribed", "denied"),
        ("redacted", "denied"),
        ("not_subscribed", "unknown"),
        ("pending", "unknown"),
        ("invalid", "unknown"),
    ],
)
def test_each_shopify_state_is_a_consent_status(state: str, status: str) -> None:
    document = copy.deepcopy(CUSTOMER)
    document["email_marketing_consent"]["state"] = state
    assert shopify_mapping.customer(document).document["consent"]["status"] == status


def test_an_unknown_shopify_state_is_named_in_shopify_s_terms(session: Session) -> None:
    document = copy.deepcopy(CUSTOMER)
    document["email_marketing_consent"]["state"] = "maybe"
    event = run_customer(session, "customers/create", document)
    assert event.status == "invalid"
    assert [e["field"] for e in event.errors] == ["email_marketing_consent.state"]


def test_a_customer_without_email_or_phone_is_invalid(session: Session) -> None:
    document = {"id": 1, "first_name": "Nobody"}
    event = run_customer(session, "customers/create", document)
    assert event.status == "invalid"


def test_a_late_delivery_of_an_older_update_rolls_nothing_back(session: Session) -> None:
    source = SourceFactory(provider="shopify")
    shipped = {**ORDER, "fulfillment_status": "fulfilled", "updated_at": "2026-12-01T09:00:00Z"}
    run(session, "orders/fulfilled", shipped, source=source)
    late = run(session, "orders/paid", ORDER, source=source)  # updated 2026-11-30
    assert late.status == "processed", late.errors
    order = session.scalars(select(m.Order)).one()
    assert order.status == "fulfilled"
    [activity_id] = linked(late, "activity")
    assert session.get(m.Activity, activity_id).type == "stale_update"
    # A replay of the late event records nothing more.
    processing.replay_event(session, event_id=late.id)
    assert processing.claim_event(session, event_id=late.id)
    single_event.run_event(
        session, event_id=late.id, policy=IngestPolicy.from_settings(get_settings())
    )
    stale = select(m.Activity).where(m.Activity.type == "stale_update")
    assert len(session.scalars(stale).all()) == 1
