"""GET /events/<id>: the status of an event, for holders of an API key."""

from __future__ import annotations

from flask import Flask

from crm_core.ingestion import processing
from tests.signed import fixture_bytes
from tests.webhooks.conftest import Sender


def test_an_event_is_shown_with_a_valid_key(app: Flask, sender: Sender, api_key: str) -> None:
    event_id = sender.post("leads", fixture_bytes("lead.json"), msg_id="msg_1").json["event_id"]
    with app.extensions["crm"].sessions.begin() as session:
        processing.claim_event(session, event_id=event_id)
        processing.complete_event(
            session, event_id=event_id, entities=[("customer", 3), ("contact", 4)]
        )
    response = sender.client.get(
        f"/events/{event_id}", headers={"Authorization": f"Bearer {api_key}"}
    )
    assert response.status_code == 200
    doc = response.json
    assert doc["status"] == "processed"
    assert doc["attempts"] == 1
    assert (doc["source"], doc["kind"], doc["webhook_id"]) == ("shop", "leads", "msg_1")
    assert doc["error"] is None
    assert doc["received_at"]
    assert doc["processed_at"]
    assert sorted(doc["entities"], key=lambda e: e["type"]) == [
        {"type": "contact", "id": 4},
        {"type": "customer", "id": 3},
    ]


def test_an_invalid_event_shows_its_errors(sender: Sender, api_key: str) -> None:
    event_id = sender.post("leads", b'{"email": 1}').json["event_id"]
    doc = sender.client.get(
        f"/events/{event_id}", headers={"Authorization": f"Bearer {api_key}"}
    ).json
    assert doc["status"] == "invalid"
    assert [e["field"] for e in doc["errors"]] == ["email"]


def test_without_a_valid_key_it_is_401(sender: Sender, api_key: str) -> None:
    event_id = sender.post("leads", fixture_bytes("lead.json")).json["event_id"]
    for headers in [{}, {"Authorization": "Bearer nope"}, {"Authorization": api_key}]:
        response = sender.client.get(f"/events/{event_id}", headers=headers)
        assert response.status_code == 401
        assert response.content_type == "application/problem+json"
        assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_an_unknown_event_is_404(sender: Sender, api_key: str) -> None:
    auth = {"Authorization": f"Bearer {api_key}"}
    for event_id in ["999999", str(2**80), "abc"]:
        response = sender.client.get(f"/events/{event_id}", headers=auth)
        assert response.status_code == 404
        assert response.content_type == "application/problem+json"


def test_an_event_has_an_etag_that_changes_as_it_is_processed(
    app: Flask, sender: Sender, api_key: str
) -> None:
    auth = {"Authorization": f"Bearer {api_key}"}
    event_id = sender.post("leads", fixture_bytes("lead.json")).json["event_id"]
    received = sender.client.get(f"/events/{event_id}", headers=auth)
    tag = received.headers["ETag"]
    assert tag.startswith(f'"event-{event_id}-')
    assert not tag.startswith("W/")
    held = sender.client.get(f"/events/{event_id}", headers={**auth, "If-None-Match": tag})
    assert (held.status_code, held.get_data(), held.headers["ETag"]) == (304, b"", tag)
    with app.extensions["crm"].sessions.begin() as session:
        processing.claim_event(session, event_id=event_id)
        processing.complete_event(session, event_id=event_id, entities=[("customer", 3)])
    processed = sender.client.get(f"/events/{event_id}", headers={**auth, "If-None-Match": tag})
    assert processed.status_code == 200
    assert processed.json["status"] == "processed"
    assert processed.headers["ETag"] != tag
