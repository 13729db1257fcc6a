"""POST /webhooks/<source>/<kind>: every answer the contract names, on both backends."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from crm_core.ingestion import services
from crm_core.ingestion.models import EventStatus, InboxEvent
from tests.signed import fixture_bytes, signed_headers
from tests.webhooks.conftest import Sender

PROBLEM = "application/problem+json"


def _events(app: Flask) -> list[InboxEvent]:
    with app.extensions["crm"].sessions() as session:
        return list(session.scalars(select(InboxEvent).order_by(InboxEvent.id)))


@pytest.mark.parametrize(
    ("kind", "fixture", "content_type"),
    [
        ("leads", "lead.json", "application/json"),
        ("tickets", "ticket.json", "application/json"),
        ("orders", "order.json", "application/json; charset=utf-8"),
        ("deals", "deal.json", "application/json"),
        ("emails", "email.json", "application/json"),
        ("emails", "email.eml", "message/rfc822"),
    ],
)
def test_a_signed_request_is_stored_verbatim_and_acknowledged(
    app: Flask, sender: Sender, kind: str, fixture: str, content_type: str
) -> None:
    body = fixture_bytes(fixture)
    response = sender.post(kind, body, msg_id="msg_1", content_type=content_type)
    assert response.status_code == 202
    event_id = response.json["event_id"]
    assert response.json == {"event_id": event_id, "status": "received"}
    assert response.headers["Location"] == f"/events/{event_id}"
    [event] = _events(app)
    assert (event.id, event.kind, event.webhook_id, event.body) == (event_id, kind, "msg_1", body)
    assert event.content_type == content_type
    assert event.status == EventStatus.RECEIVED


def test_a_redelivery_returns_the_same_event_with_200(app: Flask, sender: Sender) -> None:
    body = fixture_bytes("lead.json")
    first = sender.post("leads", body, msg_id="msg_dup")
    again = sender.post("leads", body, msg_id="msg_dup")
    assert (first.status_code, again.status_code) == (202, 200)
    assert again.json["event_id"] == first.json["event_id"]
    assert len(_events(app)) == 1


def test_unknown_source_kind_and_disabled_source_are_404(app: Flask, sender: Sender) -> None:
    body = fixture_bytes("lead.json")
    assert sender.post("invoices", body).status_code == 404
    other = Sender(sender.client, "nobody", sender.secret)
    assert other.post("leads", body).status_code == 404
    with app.extensions["crm"].sessions.begin() as session:
        services.set_source_enabled(session, name="shop", enabled=False)
    response = sender.post("leads", body)
    assert response.status_code == 404
    assert response.content_type == PROBLEM
    assert _events(app) == []


class CountedBody(io.BytesIO):
    """A request body that counts how often anyone reads it."""

    reads = 0

    def read(self, size: int | None = -1) -> bytes:
        self.reads += 1
        return super().read(size)

    def readinto(self, buffer: Any) -> int:
        self.reads += 1
        return super().readinto(buffer)


@pytest.mark.parametrize("disabled", [False, True], ids=["unknown", "disabled"])
def test_an_unknown_source_is_404_before_a_byte_of_the_body_is_read(
    app: Flask, sender: Sender, disabled: bool
) -> None:
    name = "shop" if disabled else "no-such-source"
    if disabled:
        with app.extensions["crm"].sessions.begin() as session:
            services.set_source_enabled(session, name="shop", enabled=False)
    body = CountedBody(b'{"email": "a@example.com"}' * 100)
    response = sender.client.post(
        f"/webhooks/{name}/leads",
        input_stream=body,
        headers=signed_headers(sender.secret, body.getvalue()),
        environ_overrides={"CONTENT_LENGTH": str(len(body.getvalue()))},
    )
    assert response.status_code == 404
    assert body.reads == 0


@pytest.mark.parametrize(
    ("kind", "content_type"),
    [("leads", "text/plain"), ("leads", "message/rfc822"), ("orders", "application/xml")],
)
def test_a_wrong_content_type_is_415(sender: Sender, kind: str, content_type: str) -> None:
    response = sender.post(kind, fixture_bytes("order.json"), content_type=content_type)
    assert response.status_code == 415
    assert response.content_type == PROBLEM


def test_an_oversized_body_is_413_and_not_stored(app: Flask, sender: Sender) -> None:
    body = json.dumps({"email": "a@example.com", "message": "x" * 70_000}).encode()
    response = sender.post("leads", body)
    assert response.status_code == 413
    assert response.content_type == PROBLEM
    assert _events(app) == []


def test_an_oversized_body_without_content_length_is_413(app: Flask, sender: Sender) -> None:
    """A chunked request announces no length: the limit applies to what is read."""
    body = json.dumps({"email": "a@example.com", "message": "x" * 70_000}).encode()
    headers = signed_headers(sender.secret, body)
    response = sender.client.post(
        "/webhooks/shop/leads",
        input_stream=io.BytesIO(body),
        headers=headers,
        environ_overrides={"wsgi.input_terminated": True, "CONTENT_LENGTH": ""},
    )
    assert response.status_code == 413
    assert _events(app) == []
    small = b'{"email": "a@example.com"}'
    response = sender.client.post(
        "/webhooks/shop/leads",
        input_stream=io.BytesIO(small),
        headers=signed_headers(sender.secret, small),
        environ_overrides={"wsgi.input_terminated": True, "CONTENT_LENGTH": ""},
    )
    assert response.status_code == 202


def test_e_mails_have_their_own_larger_limit(sender: Sender) -> None:
    big = fixture_bytes("email.eml") + b"x" * 100_000
    assert sender.post("emails", big, content_type="message/rfc822").status_code == 202
    huge = fixture_bytes("email.eml") + b"x" * 300_000
    assert sender.post("emails", huge, content_type="message/rfc822").status_code == 413


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b"{not json", "body"),
        (b"[" * 10_000 + b"]" * 10_000, "body"),
        (b'{"email": ' + b"1" * 5000 + b"}", "body"),
        (b'{"email": 42, "deal": {"amount": "-1"}}', "email"),
        (b'{"email": "ada.example.com", "phone": "+44 20 7946 0000"}', "email"),
    ],
    ids=["not-json", "deep", "huge-number", "fails-validation", "not-an-address"],
)
def test_a_bad_payload_is_stored_invalid_and_answered_422(
    app: Flask, sender: Sender, body: bytes, field: str
) -> None:
    response = sender.post("leads", body, msg_id="msg_bad")
    assert response.status_code == 422
    assert response.content_type == PROBLEM
    problem = response.json
    assert problem["status"] == 422
    assert problem["type"] == "/problems/invalid-payload"
    assert field in [error["field"] for error in problem["errors"]]
    [event] = _events(app)
    assert (event.id, event.status, event.body) == (problem["event_id"], "invalid", body)
    assert event.errors == problem["errors"]
    again = sender.post("leads", body, msg_id="msg_bad")
    assert (again.status_code, again.json["event_id"]) == (422, event.id)


def test_each_bad_field_is_listed(sender: Sender) -> None:
    body = json.dumps({"email": 42, "deal": {"amount": "-1", "currency": "euros"}}).encode()
    fields = {e["field"] for e in sender.post("leads", body).json["errors"]}
    assert fields == {"email", "deal.amount", "deal.currency"}


@pytest.mark.parametrize(
    "headers",
    [
        {"webhook-signature": "v1,AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="},
        {"webhook-signature": "v1AAAA"},
        {"webhook-signature": "v1,%%%"},
        {"webhook-signature": "v1,AAAA " * 3000},
        {"webhook-timestamp": "yesterday"},
        {"webhook-timestamp": "0"},
        {"webhook-id": ""},
    ],
)
def test_bad_signatures_are_401_and_store_nothing(
    app: Flask, sender: Sender, headers: dict[str, str]
) -> None:
    response = sender.post("leads", fixture_bytes("lead.json"), headers=headers)
    assert response.status_code == 401
    assert response.content_type == PROBLEM
    assert _events(app) == []


def test_a_tampered_body_is_401(app: Flask, sender: Sender) -> None:
    body = fixture_bytes("lead.json")
    headers = {k: v for k, v in sender.post("leads", b"{}", msg_id="m").request.headers.items()}
    response = sender.client.post("/webhooks/shop/leads", data=body, headers=headers)
    assert response.status_code == 401


def test_a_rotated_secret_keeps_verifying_during_the_grace_period(
    app: Flask, sender: Sender
) -> None:
    import datetime as dt

    with app.extensions["crm"].sessions.begin() as session:
        new = services.rotate_secret(session, name="shop", grace=dt.timedelta(hours=1))
    assert sender.post("leads", fixture_bytes("lead.json")).status_code == 202
    rotated = Sender(sender.client, "shop", new)
    assert rotated.post("leads", fixture_bytes("lead.json")).status_code == 202
    with app.extensions["crm"].sessions.begin() as session:
        services.rotate_secret(session, name="shop", grace=dt.timedelta(0))
    # A revoked secret may verify until the source cache expires (CRM_SOURCE_CACHE_SECONDS)...
    assert sender.post("leads", fixture_bytes("lead.json")).status_code == 202
    app.extensions.pop("crm.source_cache")  # ...that is, a few seconds later:
    assert sender.post("leads", fixture_bytes("lead.json")).status_code == 401


def test_a_source_over_its_rate_gets_429_with_retry_after(app: Flask, make_sender) -> None:
    limited = make_sender("busy", rate_limit_per_minute=2)
    codes = [limited.post("leads", fixture_bytes("lead.json")).status_code for _ in range(3)]
    assert codes == [202, 202, 429]
    response = limited.post("leads", fixture_bytes("lead.json"))
    assert response.content_type == PROBLEM
    assert 1 <= int(response.headers["Retry-After"]) <= 60
    assert len(_events(app)) == 2


def test_an_unreachable_database_is_503_with_retry_after() -> None:
    from crm_core.config import Settings
    from tests.services import free_port
    from webhooks.app import create_app

    dead = f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/nowhere"
    app = create_app(Settings(database_url=dead, broker_url="memory://", ratelimit_url="memory://"))
    body = fixture_bytes("lead.json")
    response = app.test_client().post(
        "/webhooks/shop/leads", data=body, headers=signed_headers("whsec_AAAAAAAAAAAAAAAA", body)
    )
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "5"
    assert response.content_type == PROBLEM
