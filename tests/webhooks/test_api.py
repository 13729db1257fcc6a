"""The read API over data that came in through the front door and the real handlers."""

from __future__ import annotations

import io
import json

import pytest
from flask import Flask
from sqlalchemy import select

from crm_core.config import get_settings
from crm_core.ingestion import processing, single_event
from crm_core.ingestion.models import EventStatus, InboxEvent
from crm_core.ingestion.policy import IngestPolicy
from crm_core.mail import CaseTokens
from tests.smtp_server import smtp_server
from tests.webhooks.conftest import Sender

__all__ = ["smtp_server"]


def post(sender: Sender, kind: str, doc: dict) -> int:
    response = sender.post(kind, json.dumps(doc).encode())
    assert response.status_code == 202, response.json
    return response.json["event_id"]


def process_all(app: Flask) -> list[InboxEvent]:
    """What a worker would do, in process: claim and run every waiting event."""
    sessions = app.extensions["crm"].sessions
    with sessions() as session:
        waiting = list(
            session.scalars(select(InboxEvent.id).where(InboxEvent.status == EventStatus.RECEIVED))
        )
    for event_id in waiting:
        with sessions.begin() as session:
            assert processing.claim_event(session, event_id=event_id)
            single_event.run_event(
                session, event_id=event_id, policy=IngestPolicy.from_settings(get_settings())
            )
    with sessions() as session:
        return list(session.scalars(select(InboxEvent).order_by(InboxEvent.id)))


def entity(app: Flask, event_id: int, entity_type: str) -> int:
    with app.extensions["crm"].sessions() as session:
        event = session.get(InboxEvent, event_id)
        [found] = [e.entity_id for e in event.entities if e.entity_type == entity_type]
        return found


@pytest.fixture
def get(sender: Sender, api_key: str):
    def fetch(path: str, **params: str):
        return sender.client.get(
            path, query_string=params, headers={"Authorization": f"Bearer {api_key}"}
        )

    return fetch


PATHS = [
    "/api/contacts",
    "/api/contacts/1",
    "/api/customers/1",
    "/api/customers/1/timeline",
    "/api/cases/1",
    "/api/opportunities/1",
    "/api/orders/1",
]


def test_a_contact_shows_its_marketing_consent(app: Flask, sender: Sender, get) -> None:
    consent = {"status": "granted", "at": "2026-11-30T10:00:00Z", "method": "double opt-in"}
    first = post(sender, "leads", {"email": "grace@navy.example", "consent": consent})
    post(sender, "leads", {"email": "ada@navy.example"})
    process_all(app)
    shown = get(f"/api/contacts/{entity(app, first, 'contact')}").json
    assert shown["marketing_consent"] == {
        "status": "granted",
        "at": "2026-11-30T10:00:00+00:00",
        "source_id": shown["marketing_consent"]["source_id"],
        "source": sender.name,
        "method": "double opt-in",
    }
    assert "marketing_consent_at" not in shown
    [ada] = get("/api/contacts", email="ada@navy.example").json["items"]
    assert ada["marketing_consent"] is None
    customer = get(f"/api/customers/{shown['customer_id']}").json
    assert {c["email"]: c["marketing_consent"] is None for c in customer["contacts"]} == {
        "grace@navy.example": False,
        "ada@navy.example": True,
    }


@pytest.mark.parametrize("path", PATHS)
def test_every_read_needs_an_api_key(sender: Sender, path: str) -> None:
    for headers in ({}, {"Authorization": "Bearer crm_wrong"}, {"Authorization": "Basic x"}):
        response = sender.client.get(path, headers=headers)
        assert response.status_code == 401
        assert response.mimetype == "application/problem+json"


@pytest.mark.parametrize("path", PATHS[1:])
def test_unknown_and_absurd_ids_are_404_problems(get, path: str) -> None:
    for ident in ("999999", str(2**63), str(10**30)):
        response = get(path.replace("/1", f"/{ident}"))
        assert response.status_code == 404, (path, ident)
        assert response.mimetype == "application/problem+json"


def test_a_lead_is_found_by_email_with_its_customer_and_timeline(
    app: Flask, sender: Sender, get
) -> None:
    first = post(sender, "leads", {"email": "Grace@Navy.example", "full_name": "Grace Hopper"})
    post(sender, "leads", {"email": "ada@navy.example", "first_name": "Ada"})
    post(sender, "leads", {"email": "grace@navy.example", "job_title": "Rear Admiral"})
    process_all(app)
    [contact] = get("/api/contacts", email="  GRACE@navy.example").json["items"]
    assert (contact["first_name"], contact["job_title"]) == ("Grace", "Rear Admiral")
    assert contact["id"] == entity(app, first, "contact")
    customer = get(f"/api/customers/{contact['customer_id']}").json
    assert customer["kind"] == "company"
    assert [c["is_primary"] for c in customer["contacts"]] == [True, False]
    assert customer["primary_contact_id"] == contact["id"]
    page = get(f"/api/customers/{contact['customer_id']}/timeline", limit="2").json
    assert [a["type"] for a in page["items"]] == ["lead_captured", "lead_captured"]
    assert page["items"][0]["occurred_at"] >= page["items"][1]["occurred_at"]
    rest = get(f"/api/customers/{contact['customer_id']}/timeline", cursor=page["next"]).json
    assert len(rest["items"]) == 1
    assert rest["next"] is None


def test_a_case_shows_its_activities_oldest_first(app: Flask, sender: Sender, get) -> None:
    ticket = {
        "external_id": "T-1",
        "subject": "Login fails",
        "requester": {"email": "user@client.example"},
        "comments": [{"body": "still failing", "external_id": "c1"}],
    }
    event_id = post(sender, "tickets", ticket)
    post(sender, "tickets", {**ticket, "status": "solved"})
    process_all(app)
    case = get(f"/api/cases/{entity(app, event_id, 'support_case')}").json
    assert case["status"] == "resolved"
    assert [a["type"] for a in case["activities"]["items"]] == [
        "case_opened",
        "case_comment",
        "case_status_changed",
    ]
    assert case["activities"]["next"] is None
    assert all(a["support_case_id"] == case["id"] for a in case["activities"]["items"])


def test_a_won_opportunity_shows_its_agreement(app: Flask, sender: Sender, get) -> None:
    deal = {"external_id": "D-1", "email": "cfo@big.example", "name": "Big deal", "amount": "5000"}
    event_id = post(sender, "deals", {**deal, "stage": "proposal"})
    post(sender, "deals", {**deal, "stage": "won"})
    process_all(app)
    opportunity = get(f"/api/opportunities/{entity(app, event_id, 'opportunity')}").json
    assert (opportunity["stage"], opportunity["amount"]) == ("won", "5000.00")
    [agreement] = opportunity["agreements"]
    assert agreement["origin_opportunity_id"] == opportunity["id"]


def test_an_order_shows_lines_and_total(app: Flask, sender: Sender, get) -> None:
    order = {
        "order_number": "1001",
        "email": "buyer@shop.example",
        "currency": "USD",
        "lines": [
            {"sku": "A", "quantity": 3, "unit_price": "0.10"},
            {"sku": "B", "quantity": 1, "unit_price": "99.99"},
        ],
    }
    event_id = post(sender, "orders", order)
    process_all(app)
    shown = get(f"/api/orders/{entity(app, event_id, 'order')}").json
    assert shown["total"] == "100.29"
    assert [(line["sku"], line["line_total"]) for line in shown["lines"]] == [
        ("A", "0.30"),
        ("B", "99.99"),
    ]


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/api/contacts", {"cursor": "not-a-cursor"}),
        ("/api/contacts", {"limit": "0"}),
        ("/api/contacts", {"limit": "lots"}),
        ("/api/customers/1/timeline", {"cursor": "W10"}),
    ],
)
def test_bad_query_parameters_are_400_problems(get, path: str, params: dict) -> None:
    response = get(path, **params)
    assert response.status_code == 400
    assert response.mimetype == "application/problem+json"
    assert response.json["errors"][0]["field"] in ("cursor", "limit")


def test_a_reply_from_a_case_reaches_the_smtp_server(
    app: Flask, sender: Sender, get, api_key: str, smtp_server
) -> None:
    app.extensions["crm"].settings.mail_url = smtp_server.url()
    ticket = {"external_id": "T-9", "subject": "Help", "requester": {"email": "u@client.example"}}
    event_id = post(sender, "tickets", ticket)
    process_all(app)
    case_id = entity(app, event_id, "support_case")
    auth = {"Authorization": f"Bearer {api_key}"}
    answer = sender.client.post(
        f"/api/cases/{case_id}/reply", json={"body": "Fixed."}, headers=auth
    )
    assert answer.status_code == 201, answer.json
    assert answer.json["delivery"] == "sent"
    [mail] = smtp_server.handler.received
    assert mail.rcpt_tos == ["u@client.example"]
    tokens = CaseTokens.from_secret(app.extensions["crm"].settings.resolved_secret_key())
    assert mail.message["Subject"] == f"Re: Help {tokens.token(case_id)}"
    case = get(f"/api/cases/{case_id}").json
    assert case["first_responded_at"] is not None
    assert case["activities"]["items"][-1]["type"] == "email_sent"
    for bad in ({}, {"body": 5}, {"body": "  "}):
        refused = sender.client.post(f"/api/cases/{case_id}/reply", json=bad, headers=auth)
        assert refused.status_code in (400, 422)
        assert refused.mimetype == "application/problem+json"
    missing = sender.client.post("/api/cases/999999/reply", json={"body": "x"}, headers=auth)
    assert missing.status_code == 404
    assert len(smtp_server.handler.received) == 1


@pytest.mark.parametrize("announced", [True, False], ids=["content-length", "chunked"])
def test_an_api_body_over_the_json_limit_is_413(
    app: Flask, sender: Sender, api_key: str, announced: bool
) -> None:
    body = json.dumps({"body": "x" * 70_000}).encode()  # the app allows 64 KiB
    if announced:
        framing: dict[str, object] = {"CONTENT_LENGTH": str(len(body))}
    else:  # as gunicorn passes a chunked request on
        framing = {"wsgi.input_terminated": True, "HTTP_TRANSFER_ENCODING": "chunked"}
    response = sender.client.post(
        "/api/cases/1/reply",
        input_stream=io.BytesIO(body),
        content_type="application/json",
        headers={"Authorization": f"Bearer {api_key}"},
        environ_overrides=framing,
    )
    assert response.status_code == 413
    assert response.mimetype == "application/problem+json"


def test_a_chunked_api_body_within_the_limit_is_read_whole(sender: Sender, api_key: str) -> None:
    body = json.dumps({"body": "x" * 60_000}).encode()
    response = sender.client.post(
        "/api/cases/999999/reply",
        input_stream=io.BytesIO(body),
        content_type="application/json",
        headers={"Authorization": f"Bearer {api_key}"},
        environ_overrides={"wsgi.input_terminated": True, "HTTP_TRANSFER_ENCODING": "chunked"},
    )
    assert response.status_code == 404  # parsed, and the case looked up
