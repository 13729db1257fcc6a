"""POST /webhooks/<source> for custom senders: verified as their mapping file says, 401 when
not, stored once per delivery id, on both backends."""

from __future__ import annotations

import time

import pytest
from flask import Flask
from sqlalchemy import select
from werkzeug.test import TestResponse

from crm_core.ingestion import services
from crm_core.ingestion.models import EventStatus, InboxEvent
from crm_core.providers.custom_spec import load_mapping
from tests.provider_requests import (
    EXAMPLES,
    github_style_headers,
    lead_form_headers,
    provider_fixture,
)
from webhooks.publisher import BackgroundPublisher

PROBLEM = "application/problem+json"
SECRET = "a secret the sender and this source share"


@pytest.fixture
def published(app: Flask) -> list[int]:
    ids: list[int] = []
    app.extensions["crm_publisher"] = BackgroundPublisher(ids.extend)
    return ids


def _source(app: Flask, name: str, example: str) -> None:
    mapping = load_mapping((EXAMPLES / example).read_bytes()).model_dump(mode="json")
    with app.extensions["crm"].sessions.begin() as session:
        services.create_source(
            session, name=name, provider="custom", secret=SECRET, mapping=mapping
        )


def _events(app: Flask) -> list[InboxEvent]:
    with app.extensions["crm"].sessions() as session:
        return list(session.scalars(select(InboxEvent).order_by(InboxEvent.id)))


def _post(app: Flask, source: str, body: bytes, headers: dict[str, str]) -> TestResponse:
    return app.test_client().post(f"/webhooks/{source}", data=body, headers=headers)


def test_a_github_style_delivery_is_stored_once_and_published(
    app: Flask, published: list[int]
) -> None:
    _source(app, "shop", "github-style.toml")
    body = provider_fixture("custom/order_completed.json")
    headers = github_style_headers(SECRET, body, delivery="72d3162e-cc78-11e3-81ab-4c9367dc0958")
    first = _post(app, "shop", body, headers)
    again = _post(app, "shop", body, headers)
    assert (first.status_code, again.status_code) == (202, 200), first.json
    assert first.json == {"event_id": first.json["event_id"], "status": "received"}
    assert again.json["event_id"] == first.json["event_id"]
    [event] = _events(app)
    assert (event.kind, event.topic, event.webhook_id, event.body) == (
        "orders",
        "order.completed",
        "72d3162e-cc78-11e3-81ab-4c9367dc0958",
        body,
    )
    assert "x-hub-signature-256" not in event.headers
    assert app.extensions["crm_publisher"].drain()
    assert published == [event.id]


def test_a_wrong_or_missing_signature_is_a_401_problem_and_stores_nothing(app: Flask) -> None:
    _source(app, "shop", "github-style.toml")
    _source(app, "landing", "lead-form.toml")
    order = provider_fixture("custom/order_completed.json")
    lead = provider_fixture("custom/lead_submitted.json")
    attempts = [
        ("shop", order, github_style_headers("not the secret", order)),
        ("shop", order + b"\n", github_style_headers(SECRET, order)),
        ("shop", order, {"Content-Type": "application/json", "X-Shop-Delivery": "d"}),
        ("landing", lead, lead_form_headers("not the secret", lead)),
        ("landing", lead, lead_form_headers(SECRET, lead, at=time.time() - 3600)),
    ]
    for source, body, headers in attempts:
        response = _post(app, source, body, headers)
        assert response.status_code == 401, (source, headers)
        assert response.content_type == PROBLEM
        assert response.json["type"].endswith("invalid-signature")
    assert _events(app) == []


def test_a_lead_form_delivery_is_keyed_by_its_pointer_and_signed_anew_on_retry(
    app: Flask,
) -> None:
    _source(app, "landing", "lead-form.toml")
    body = provider_fixture("custom/lead_submitted.json")
    first = _post(app, "landing", body, lead_form_headers(SECRET, body))
    again = _post(app, "landing", body, lead_form_headers(SECRET, body, at=time.time() + 1))
    assert (first.status_code, again.status_code) == (202, 200)
    assert again.json["event_id"] == first.json["event_id"]
    [event] = _events(app)
    assert (event.kind, event.webhook_id, event.topic) == ("leads", "sub_01JE2M6S4V9ZQK", None)
    assert event.headers["x-form-timestamp"]


def test_a_topic_the_file_does_not_handle_is_stored_ignored(
    app: Flask, published: list[int]
) -> None:
    _source(app, "shop", "github-style.toml")
    body = b'{"zen": "Design for failure."}'
    response = _post(app, "shop", body, github_style_headers(SECRET, body, event="ping"))
    assert (response.status_code, response.json["status"]) == (202, "ignored")
    [event] = _events(app)
    assert (event.status, event.topic) == (EventStatus.IGNORED, "ping")
    assert app.extensions["crm_publisher"].drain()
    assert published == []


def test_a_signed_body_without_the_delivery_id_is_stored_invalid_with_422(app: Flask) -> None:
    _source(app, "landing", "lead-form.toml")
    body = b'{"submission": {"answers": {"email": "a@example.com"}}}'
    response = _post(app, "landing", body, lead_form_headers(SECRET, body))
    assert (response.status_code, response.content_type) == (422, PROBLEM)
    assert response.json["errors"][0]["field"] == "/submission/id"
    [event] = _events(app)
    assert event.status == EventStatus.INVALID
