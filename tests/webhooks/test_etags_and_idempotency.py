"""ETag / If-Match on single records, and Idempotency-Key on every POST under /api."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable

import pytest
from flask import Flask, Response
from flask.testing import FlaskClient
from sqlalchemy import func, select

from crm_core.bounces.models import SentMessage
from crm_core.customers.models import Customer
from crm_core.db import utcnow
from crm_core.idempotency.models import IdempotencyKey
from crm_core.idempotency.services import ABANDONED_AFTER, claim
from tests.smtp_server import smtp_server
from tests.webhooks.conftest import Sender
from tests.webhooks.test_api import entity, post, process_all
from webhooks import idempotency
from webhooks.auth import require_api_key
from webhooks.idempotency import check_idempotent_posts

__all__ = ["smtp_server"]

NEW = {"name": "Acme Ltd", "primary_contact": {"email": "ada@acme.example"}}


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def writer(make_key: Callable[..., str]) -> dict[str, str]:
    return {"Authorization": f"Bearer {make_key('writer', 'read', 'write')}"}


def _count(app: Flask, model: type) -> int:
    with app.extensions["crm"].sessions() as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def test_every_single_record_has_an_etag_that_changes_with_it(
    client: FlaskClient, writer: dict[str, str]
) -> None:
    customer = client.post("/api/customers", json=NEW, headers=writer)
    cid = customer.get_json()["id"]
    contact_id = customer.get_json()["primary_contact_id"]
    shown = client.get(f"/api/customers/{cid}", headers=writer)
    tag = shown.headers["ETag"]
    assert tag == customer.headers["ETag"]
    assert tag.startswith('"')
    assert not tag.startswith("W/")
    assert client.get(f"/api/customers/{cid}", headers=writer).headers["ETag"] == tag
    same = client.get(f"/api/customers/{cid}", headers={**writer, "If-None-Match": tag})
    assert same.status_code == 304
    # A change to one of its contacts changes the customer's representation, and its ETag.
    client.patch(f"/api/contacts/{contact_id}", json={"job_title": "CTO"}, headers=writer)
    assert client.get(f"/api/customers/{cid}", headers=writer).headers["ETag"] != tag
    deal = client.post(
        "/api/opportunities", json={"customer_id": cid, "name": "Pilot"}, headers=writer
    ).get_json()
    for path in (f"/api/contacts/{contact_id}", f"/api/opportunities/{deal['id']}"):
        assert client.get(path, headers=writer).headers["ETag"]


def test_a_stale_if_match_is_412_and_a_current_one_or_none_is_let_through(
    client: FlaskClient, writer: dict[str, str]
) -> None:
    cid = client.post("/api/customers", json=NEW, headers=writer).get_json()["id"]
    first = client.get(f"/api/customers/{cid}", headers=writer).headers["ETag"]
    changed = client.patch(
        f"/api/customers/{cid}", json={"industry": "Engines"}, headers={**writer, "If-Match": first}
    )
    assert changed.status_code == 200
    second = changed.headers["ETag"]
    assert second != first
    stale = client.patch(
        f"/api/customers/{cid}", json={"industry": "Looms"}, headers={**writer, "If-Match": first}
    )
    assert stale.status_code == 412
    assert stale.mimetype == "application/problem+json"
    assert stale.get_json()["etag"] == second
    assert stale.headers["ETag"] == second
    assert client.get(f"/api/customers/{cid}", headers=writer).get_json()["industry"] == "Engines"
    weak = client.patch(
        f"/api/customers/{cid}",
        json={"industry": "x"},
        headers={**writer, "If-Match": f"W/{second}"},
    )
    assert weak.status_code == 412  # If-Match compares strongly
    listed = client.patch(
        f"/api/customers/{cid}",
        json={"industry": "Mills"},
        headers={**writer, "If-Match": f'"other", {second}'},
    )
    assert listed.status_code == 200
    star = {**writer, "If-Match": "*"}
    assert (
        client.patch(f"/api/customers/{cid}", json={"city": "Ulm"}, headers=star).status_code == 200
    )
    assert (
        client.patch(f"/api/customers/{cid}", json={"city": "Bonn"}, headers=writer).status_code
        == 200
    )
    refused_delete = client.delete(f"/api/customers/{cid}", headers={**writer, "If-Match": first})
    assert refused_delete.status_code == 412
    other = client.post(
        "/api/customers",
        json={"name": "Other", "primary_contact": {"email": "o@other.example"}},
        headers=writer,
    ).get_json()["id"]
    refused_merge = client.post(
        f"/api/customers/{other}/merge", json={"into": cid}, headers={**writer, "If-Match": first}
    )
    assert refused_merge.status_code == 412


def test_a_retried_post_gets_the_first_answer_and_writes_once(
    app: Flask, client: FlaskClient, writer: dict[str, str]
) -> None:
    keyed = {**writer, "Idempotency-Key": "create-acme-1"}
    first = client.post("/api/customers", json=NEW, headers=keyed)
    assert first.status_code == 201
    again = client.post("/api/customers", json=NEW, headers=keyed)
    assert again.status_code == 201
    assert again.get_json() == first.get_json()
    assert again.headers["Location"] == first.headers["Location"]
    assert again.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert _count(app, Customer) == 1

    other_body = client.post("/api/customers", json={**NEW, "name": "Else"}, headers=keyed)
    assert other_body.status_code == 422
    assert other_body.get_json()["errors"][0]["field"] == "Idempotency-Key"
    # A problem is an answer too: the retry gets the same 409, not a second try.
    dup = {**writer, "Idempotency-Key": "dup"}
    conflict = client.post("/api/customers", json=NEW, headers=dup)
    assert conflict.status_code == 409
    replayed = client.post("/api/customers", json=NEW, headers=dup)
    assert (replayed.status_code, replayed.get_json()) == (409, conflict.get_json())
    for bad in ("", "x" * 256, "é"):
        refused = client.post(
            "/api/customers", json=NEW, headers={**writer, "Idempotency-Key": bad}
        )
        assert refused.status_code == 400, bad
        assert refused.get_json()["errors"][0]["field"] == "Idempotency-Key"


def test_the_same_key_of_another_actor_is_another_key(
    app: Flask, client: FlaskClient, writer: dict[str, str], make_key: Callable[..., str]
) -> None:
    other = {"Authorization": f"Bearer {make_key('other', 'read', 'write')}"}
    one = client.post("/api/customers", json=NEW, headers={**writer, "Idempotency-Key": "k"})
    two = client.post(
        "/api/customers",
        json={"name": "B", "primary_contact": {"email": "b@b.example"}},
        headers={**other, "Idempotency-Key": "k"},
    )
    assert (one.status_code, two.status_code) == (201, 201)
    assert _count(app, Customer) == 2


def test_a_key_in_progress_is_409_an_abandoned_one_is_taken_over_and_old_ones_are_swept(
    app: Flask, client: FlaskClient, writer: dict[str, str]
) -> None:
    client.post("/api/customers", json=NEW, headers={**writer, "Idempotency-Key": "old"})
    body = {**NEW, "name": "Slow", "primary_contact": {"email": "slow@acme.example"}}
    with app.test_request_context("/api/customers", method="POST", json=body):
        fingerprint = idempotency._fingerprint()
    with app.extensions["crm"].sessions.begin() as session:
        row = session.scalars(select(IdempotencyKey)).one()
        row.expires_at = utcnow() - dt.timedelta(seconds=1)
        # The same request, claimed by a process that is still running it.
        assert (
            claim(
                session,
                actor=row.actor,
                key="busy",
                fingerprint=fingerprint,
                ttl=dt.timedelta(hours=1),
            )
            is None
        )
    same = {**writer, "Idempotency-Key": "busy"}
    during = client.post("/api/customers", json=body, headers=same)
    assert during.status_code == 409
    assert during.headers["Retry-After"] == "1"
    assert during.get_json()["type"] == "/problems/idempotency-key-in-progress"
    with app.extensions["crm"].sessions() as session:  # the claim swept the expired key
        assert session.scalar(select(IdempotencyKey).where(IdempotencyKey.key == "old")) is None
    with app.extensions["crm"].sessions.begin() as session:
        busy = session.scalars(select(IdempotencyKey).where(IdempotencyKey.key == "busy")).one()
        busy.created_at = utcnow() - ABANDONED_AFTER - dt.timedelta(seconds=1)
    taken_over = client.post("/api/customers", json=body, headers=same)
    assert taken_over.status_code == 201
    assert _count(app, Customer) == 2


def test_a_case_reply_sent_twice_with_one_key_mails_once(
    app: Flask, sender: Sender, make_key: Callable[..., str], smtp_server
) -> None:
    app.extensions["crm"].settings.mail_url = smtp_server.url()
    ticket = {"external_id": "T-1", "subject": "Help", "requester": {"email": "u@client.example"}}
    event_id = post(sender, "tickets", ticket)
    process_all(app)
    case_id = entity(app, event_id, "support_case")
    auth = {"Authorization": f"Bearer {make_key('agent', 'send')}", "Idempotency-Key": "reply-1"}
    first = sender.client.post(f"/api/cases/{case_id}/reply", json={"body": "Fixed."}, headers=auth)
    second = sender.client.post(
        f"/api/cases/{case_id}/reply", json={"body": "Fixed."}, headers=auth
    )
    assert first.status_code == 201, first.get_json()
    assert (second.status_code, second.get_json()) == (201, first.get_json())
    assert len(smtp_server.handler.received) == 1
    assert _count(app, SentMessage) == 1
    without_key = {"Authorization": auth["Authorization"]}
    sender.client.post(f"/api/cases/{case_id}/reply", json={"body": "Fixed."}, headers=without_key)
    assert len(smtp_server.handler.received) == 2  # no key, no promise


def test_concurrent_duplicates_make_one_record(
    app: Flask, writer: dict[str, str], database_url: str
) -> None:
    keyed = {**writer, "Idempotency-Key": "race"}
    answers: list[Response] = []
    barrier = threading.Barrier(4)

    def send() -> None:
        barrier.wait(10)
        answers.append(app.test_client().post("/api/customers", json=NEW, headers=keyed))

    threads = [threading.Thread(target=send) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(answers) == 4
    assert sorted({a.status_code for a in answers}) in ([201], [201, 409])
    created = [a.get_json() for a in answers if a.status_code == 201]
    assert all(doc == created[0] for doc in created)
    assert _count(app, Customer) == 1


def test_a_post_under_api_without_the_wrapper_stops_the_app_from_starting(app: Flask) -> None:
    @require_api_key
    def careless() -> Response:
        return Response(status=204)

    app.add_url_rule("/api/careless", "careless", careless, methods=["POST"])
    with pytest.raises(RuntimeError, match="careless"):
        check_idempotent_posts(app)
