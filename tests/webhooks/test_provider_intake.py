"""POST /webhooks/<source>: each provider's request as it sends it, on both backends."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from flask import Flask
from sqlalchemy import select
from werkzeug.test import TestResponse

from crm_core.ingestion import services
from crm_core.ingestion.models import EventStatus, InboxEvent
from tests.provider_requests import (
    freshdesk_headers,
    provider_fixture,
    shopify_headers,
    stripe_headers,
    typeform_headers,
    woocommerce_headers,
    zendesk_headers,
)
from tests.signed import fixture_bytes, signed_headers
from webhooks.publisher import BackgroundPublisher

PROBLEM = "application/problem+json"
SIGNATURE_HEADERS = {
    "x-shopify-hmac-sha256",
    "x-wc-webhook-signature",
    "stripe-signature",
    "x-zendesk-webhook-signature",
    "typeform-signature",
}
SECRETS = {
    "shopify": "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",
    "woocommerce": "ck-webhook-secret: q7!R2s",
    "stripe": "whsec_2b7e151628aed2a6abf7158809cf4f3c",
    "zendesk": "dGhpc19zZWNyZXRfaXNfZm9yX3Rlc3Rpbmdfb25seQ",
    "typeform": "a long random typeform secret",
}
# provider -> (handled fixture, how to sign it, its delivery id, its topic, its kind)
CASES: dict[str, tuple[str, Callable[..., dict[str, str]], str, str, str]] = {
    "shopify": (
        "shopify/orders_create.json",
        lambda s, b: shopify_headers(s, b, webhook_id="b54557e4-bdd9-4b37-8a5f-bf7d70bcd043"),
        "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043",
        "orders/create",
        "orders",
    ),
    "woocommerce": (
        "woocommerce/order_created.json",
        lambda s, b: woocommerce_headers(s, b, delivery_id="6b3e0b0ff0a4c1d2"),
        "6b3e0b0ff0a4c1d2",
        "order.created",
        "orders",
    ),
    "stripe": (
        "stripe/checkout_session_completed.json",
        stripe_headers,
        "evt_1QHy7b2eZvKYlo2CkT4xWm9P",
        "checkout.session.completed",
        "orders",
    ),
    "zendesk": (
        "zendesk/ticket_comment_added.json",
        zendesk_headers,
        "d4f5c389-8f4a-4c2e-a1b9-8e4f39c71d52",
        "zen:event-type:ticket.comment_added",
        "tickets",
    ),
    "typeform": (
        "typeform/form_response.json",
        typeform_headers,
        "01JDXR4Q8W3M0FZ9K2TB7N6C5V",
        "form_response",
        "leads",
    ),
}


@pytest.fixture
def published(app: Flask) -> list[int]:
    """The ids the intake hands to the broker, kept in a list instead."""
    ids: list[int] = []
    app.extensions["crm_publisher"] = BackgroundPublisher(ids.extend)
    return ids


def _events(app: Flask) -> list[InboxEvent]:
    with app.extensions["crm"].sessions() as session:
        return list(session.scalars(select(InboxEvent).order_by(InboxEvent.id)))


def _source(app: Flask, provider: str, name: str | None = None) -> str:
    """Create a source of ``provider``; returns its secret (generated for Freshdesk)."""
    with app.extensions["crm"].sessions.begin() as session:
        _, secret = services.create_source(
            session, name=name or provider, provider=provider, secret=SECRETS.get(provider)
        )
    return secret


def _post(app: Flask, source: str, body: bytes, headers: dict[str, str]) -> TestResponse:
    return app.test_client().post(f"/webhooks/{source}", data=body, headers=headers)


@pytest.mark.parametrize("provider", list(CASES))
def test_a_correctly_signed_request_is_stored_verbatim_with_its_topic(
    app: Flask, published: list[int], provider: str
) -> None:
    fixture, sign, webhook_id, topic, kind = CASES[provider]
    secret = _source(app, provider)
    body = provider_fixture(fixture)
    response = _post(app, provider, body, sign(secret, body))
    assert response.status_code == 202, response.json
    assert response.json == {"event_id": response.json["event_id"], "status": "received"}
    [event] = _events(app)
    assert (event.body, event.webhook_id, event.topic, event.kind) == (
        body,
        webhook_id,
        topic,
        kind,
    )
    assert event.status == EventStatus.RECEIVED
    assert not SIGNATURE_HEADERS & set(event.headers)
    assert app.extensions["crm_publisher"].drain()
    assert published == [event.id]


@pytest.mark.parametrize("provider", list(CASES))
def test_a_wrongly_signed_request_is_a_401_problem_and_nothing_is_stored(
    app: Flask, provider: str
) -> None:
    fixture, sign, *_ = CASES[provider]
    _source(app, provider)
    body = provider_fixture(fixture)
    for headers in (sign("not the secret", body), {"Content-Type": "application/json"}):
        response = _post(app, provider, body, headers)
        assert response.status_code == 401
        assert response.content_type == PROBLEM
        assert response.json["type"].endswith("invalid-signature")
    assert _events(app) == []


@pytest.mark.parametrize("provider", list(CASES))
def test_a_redelivery_is_one_event_answered_again(app: Flask, provider: str) -> None:
    fixture, sign, *_ = CASES[provider]
    secret = _source(app, provider)
    body = provider_fixture(fixture)
    first = _post(app, provider, body, sign(secret, body))
    again = _post(app, provider, body, sign(secret, body))  # signed anew, as providers retry
    assert (first.status_code, again.status_code) == (202, 200)
    assert again.json["event_id"] == first.json["event_id"]
    assert len(_events(app)) == 1


@pytest.mark.parametrize(
    ("provider", "fixture", "sign", "topic"),
    [
        (
            "shopify",
            "shopify/customers_create.json",
            lambda s, b: shopify_headers(s, b, topic="products/create", webhook_id="p-1"),
            "products/create",
        ),
        (
            "woocommerce",
            "woocommerce/order_created.json",
            lambda s, b: woocommerce_headers(s, b, topic="order.deleted", delivery_id="d-1"),
            "order.deleted",
        ),
        ("stripe", "stripe/payment_intent_created.json", stripe_headers, "payment_intent.created"),
        (
            "zendesk",
            "zendesk/ticket_tags_changed.json",
            zendesk_headers,
            "zen:event-type:ticket.tags_changed",
        ),
    ],
)
def test_a_topic_not_handled_is_stored_ignored_with_a_2xx_and_not_published(  # type: ignore[no-untyped-def]
    app: Flask, published: list[int], provider: str, fixture: str, sign, topic: str
) -> None:
    secret = _source(app, provider)
    body = provider_fixture(fixture)
    response = _post(app, provider, body, sign(secret, body))
    assert response.status_code == 202
    assert response.json["status"] == "ignored"
    [event] = _events(app)
    assert (event.status, event.topic, event.body) == (EventStatus.IGNORED, topic, body)
    again = _post(app, provider, body, sign(secret, body))
    assert (again.status_code, again.json["status"]) == (200, "ignored")
    assert app.extensions["crm_publisher"].drain()
    assert published == []


def test_woocommerce_ping_gets_exactly_200_and_stores_nothing(app: Flask) -> None:
    _source(app, "woocommerce", name="woo")
    response = _post(
        app,
        "woo",
        provider_fixture("woocommerce/ping.txt"),
        {"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 200
    assert _events(app) == []
    # The ping form without the ping body is an unsigned delivery: refused.
    other = _post(
        app, "woo", b"webhook_id=14&topic=x", {"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert other.status_code == 401


def test_the_event_document_shows_the_providers_topic(app: Flask, api_key: str) -> None:
    secret = _source(app, "stripe")
    body = provider_fixture("stripe/payment_intent_created.json")
    event_id = _post(app, "stripe", body, stripe_headers(secret, body)).json["event_id"]
    shown = app.test_client().get(
        f"/events/{event_id}", headers={"Authorization": f"Bearer {api_key}"}
    )
    assert (shown.json["topic"], shown.json["status"]) == ("payment_intent.created", "ignored")


def test_freshdesk_basic_credentials(app: Flask) -> None:
    credentials = _source(app, "freshdesk", name="helpdesk")
    body = provider_fixture("freshdesk/ticket_created.json")
    assert _post(app, "helpdesk", body, freshdesk_headers("freshdesk-x:nope")).status_code == 401
    first = _post(app, "helpdesk", body, freshdesk_headers(credentials))
    again = _post(app, "helpdesk", body, freshdesk_headers(credentials))
    assert (first.status_code, again.status_code) == (202, 200)
    [event] = _events(app)
    assert (event.kind, event.topic, event.webhook_id.startswith("sha256:")) == (
        "tickets",
        "automation",
        True,
    )
    assert "authorization" not in {name.lower() for name in event.headers}


def test_a_signed_body_without_its_delivery_id_is_stored_invalid_with_422(app: Flask) -> None:
    secret = _source(app, "stripe")
    body = b'{"object": "event", "type": "customer.created"}'
    response = _post(app, "stripe", body, stripe_headers(secret, body))
    assert response.status_code == 422
    assert response.content_type == PROBLEM
    assert response.json["errors"][0]["field"] == "id"
    [event] = _events(app)
    assert event.status == EventStatus.INVALID


def test_each_route_refuses_the_other_format(app: Flask, make_sender) -> None:  # type: ignore[no-untyped-def]
    standard = make_sender("website")
    lead = fixture_bytes("lead.json")
    # A standard source has no provider endpoint…
    response = _post(app, "website", lead, signed_headers(standard.secret, lead))
    assert response.status_code == 404
    assert response.json["type"].endswith("wrong-endpoint")
    # …and a provider's source no /<kind> endpoint.
    secret = _source(app, "shopify")
    body = provider_fixture("shopify/orders_create.json")
    response = app.test_client().post(
        "/webhooks/shopify/orders", data=body, headers=shopify_headers(secret, body)
    )
    assert response.status_code == 404
    assert standard.post("leads", lead).status_code == 202


def test_unknown_source_wrong_media_type_and_oversized_body(app: Flask) -> None:
    secret = _source(app, "shopify")
    body = provider_fixture("shopify/orders_create.json")
    assert _post(app, "nobody", body, shopify_headers(secret, body)).status_code == 404
    xml = dict(shopify_headers(secret, body), **{"Content-Type": "application/xml"})
    response = _post(app, "shopify", body, xml)
    assert (response.status_code, response.content_type) == (415, PROBLEM)
    big = b'{"x": "' + b"a" * (64 * 1024) + b'"}'
    assert _post(app, "shopify", big, shopify_headers(secret, big)).status_code == 413
    assert _events(app) == []
