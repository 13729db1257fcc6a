"""What each provider says a verified request is: delivery id, kind, topic, handled or not."""

from __future__ import annotations

import json

import pytest
from werkzeug.datastructures import Headers

from crm_core.payloads.kinds import EventKind
from crm_core.providers import PROVIDERS, ProviderRequest
from crm_core.providers.base import body_digest_id
from tests.provider_requests import (
    freshdesk_headers,
    provider_fixture,
    shopify_headers,
    stripe_headers,
    typeform_headers,
    woocommerce_headers,
    zendesk_headers,
)


def _classify(provider: str, headers: dict[str, str], body: bytes):  # type: ignore[no-untyped-def]
    sent = Headers(headers)
    request = ProviderRequest(sent, body, sent.get("Content-Type", "").split(";")[0])
    return PROVIDERS[provider].classify(request, max_depth=32)


def test_shopify_reads_topic_and_delivery_id_from_headers_only() -> None:
    body = provider_fixture("shopify/orders_create.json")
    headers = shopify_headers("s", body, topic="orders/paid", webhook_id="b54557e4-bdd9")
    delivery = _classify("shopify", headers, body)
    assert (delivery.webhook_id, delivery.kind, delivery.topic, delivery.handled) == (
        "b54557e4-bdd9",
        EventKind.ORDERS,
        "orders/paid",
        True,
    )
    assert delivery.headers["x-shopify-shop-domain"] == "leaf-and-kettle.myshopify.com"
    assert "x-shopify-hmac-sha256" not in delivery.headers
    # Not even JSON: the body is not read at intake.
    assert _classify("shopify", headers, b"\xff not json").errors is None


def test_shopify_customers_are_leads_and_other_topics_are_ignored() -> None:
    body = provider_fixture("shopify/customers_create.json")
    customer = _classify("shopify", shopify_headers("s", body, topic="customers/create"), body)
    assert (customer.kind, customer.handled) == (EventKind.LEADS, True)
    product = _classify("shopify", shopify_headers("s", body, topic="products/create"), body)
    assert (product.topic, product.handled, product.errors) == ("products/create", False, None)


def test_shopify_falls_back_to_the_event_id() -> None:
    body = b"{}"
    headers = shopify_headers("s", body)
    del headers["X-Shopify-Webhook-Id"]
    headers["X-Shopify-Event-Id"] = "98880550-7158-44d4-b7cd-2c97c8a091b5"
    assert _classify("shopify", headers, body).webhook_id == headers["X-Shopify-Event-Id"]


@pytest.mark.parametrize(
    ("topic", "kind", "handled"),
    [
        ("order.created", EventKind.ORDERS, True),
        ("order.updated", EventKind.ORDERS, True),
        ("customer.created", EventKind.LEADS, True),
        ("product.updated", EventKind.ORDERS, False),
    ],
)
def test_woocommerce_topics(topic: str, kind: EventKind, handled: bool) -> None:
    body = provider_fixture("woocommerce/order_created.json")
    headers = woocommerce_headers("s", body, topic=topic, delivery_id="0f3c9a")
    delivery = _classify("woocommerce", headers, body)
    assert (delivery.webhook_id, delivery.kind, delivery.handled) == ("0f3c9a", kind, handled)


def test_woocommerce_ping_is_recognised_only_unsigned_and_exact() -> None:
    woo = PROVIDERS["woocommerce"]
    ping = provider_fixture("woocommerce/ping.txt")
    form = "application/x-www-form-urlencoded"
    assert woo.is_ping(ProviderRequest(Headers({"Content-Type": form}), ping, form))
    signed = Headers(woocommerce_headers("s", ping))
    assert not woo.is_ping(ProviderRequest(signed, ping, form))
    for body in (b"webhook_id=14&x=1", b"webhook_id=", b'{"webhook_id": 14}'):
        assert not woo.is_ping(ProviderRequest(Headers(), body, form))


@pytest.mark.parametrize(
    ("provider", "sign", "fixture", "webhook_id", "topic", "kind"),
    [
        (
            "stripe",
            stripe_headers,
            "stripe/checkout_session_completed.json",
            "evt_1QHy7b2eZvKYlo2CkT4xWm9P",
            "checkout.session.completed",
            EventKind.ORDERS,
        ),
        (
            "zendesk",
            zendesk_headers,
            "zendesk/ticket_comment_added.json",
            "d4f5c389-8f4a-4c2e-a1b9-8e4f39c71d52",
            "zen:event-type:ticket.comment_added",
            EventKind.TICKETS,
        ),
        (
            "typeform",
            typeform_headers,
            "typeform/form_response.json",
            "01JDXR4Q8W3M0FZ9K2TB7N6C5V",
            "form_response",
            EventKind.LEADS,
        ),
    ],
)
def test_body_keyed_providers_read_id_and_type_from_the_body(  # type: ignore[no-untyped-def]
    provider, sign, fixture, webhook_id, topic, kind
) -> None:
    body = provider_fixture(fixture)
    delivery = _classify(provider, sign("s", body), body)
    assert (delivery.webhook_id, delivery.topic, delivery.kind, delivery.handled) == (
        webhook_id,
        topic,
        kind,
        True,
    )
    assert delivery.errors is None


@pytest.mark.parametrize(
    ("provider", "fixture", "topic"),
    [
        ("stripe", "stripe/payment_intent_created.json", "payment_intent.created"),
        ("zendesk", "zendesk/ticket_tags_changed.json", "zen:event-type:ticket.tags_changed"),
    ],
)
def test_body_keyed_topics_not_handled_are_ignored(provider: str, fixture: str, topic: str) -> None:
    body = provider_fixture(fixture)
    delivery = _classify(provider, {"Content-Type": "application/json"}, body)
    assert (delivery.topic, delivery.handled, delivery.errors) == (topic, False, None)


@pytest.mark.parametrize(
    ("provider", "body", "field"),
    [
        ("stripe", b'{"type": "customer.created"}', "id"),
        ("stripe", b"[1, 2]", "body"),
        ("zendesk", b"not json", "body"),
        ("typeform", b'{"event_id": 7, "event_type": "form_response"}', "event_id"),
        ("typeform", b"[" * 100 + b"]" * 100, "body"),
    ],
)
def test_a_body_without_its_id_is_invalid_and_keyed_by_its_digest(
    provider: str, body: bytes, field: str
) -> None:
    delivery = _classify(provider, {"Content-Type": "application/json"}, body)
    assert delivery.webhook_id == body_digest_id(body)
    assert delivery.errors is not None
    assert delivery.errors[0].field == field


def test_freshdesk_is_always_a_ticket_keyed_by_its_body() -> None:
    body = provider_fixture("freshdesk/ticket_created.json")
    delivery = _classify("freshdesk", freshdesk_headers("u:p"), body)
    assert (delivery.kind, delivery.handled, delivery.webhook_id) == (
        EventKind.TICKETS,
        True,
        body_digest_id(body),
    )
    assert json.loads(body)["freshdesk_webhook"]["ticket_id"] == 2061
