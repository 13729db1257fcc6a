"""GET /api/followups (and one task), GET /api/products/<id>, and closing a task, behind the
API key; errors are problem documents."""

from __future__ import annotations

import datetime as dt

from flask import Flask

from crm_core.customers.services import create_customer
from crm_core.db import utcnow
from crm_core.followups.rules import parse_rules
from crm_core.followups.services import evaluate
from crm_core.models import Contact
from crm_core.sales.models import Product

RULE = parse_rules('[[rule]]\nname = "lead"\nkind = "lead_no_outbound"\nafter = "1h"')


def make_tasks(app: Flask, n: int) -> None:
    with app.extensions["crm"].sessions.begin() as session:
        for i in range(n):
            contact = Contact(
                email=f"lead{i}@client.example",
                email_normalized=f"lead{i}@client.example",
                created_at=utcnow() - dt.timedelta(hours=2),
            )
            create_customer(session, name=f"Client {i}", primary_contact=contact)
        assert len(evaluate(session, RULE, sender="crm@acme.test")) == n


def test_open_followups_page_by_page_and_closing_one(app: Flask, api_key: str) -> None:
    make_tasks(app, 3)
    client = app.test_client()
    auth = {"Authorization": f"Bearer {api_key}"}

    first = client.get("/api/followups?status=open&limit=2", headers=auth)
    assert first.status_code == 200
    assert len(first.json["items"]) == 2
    rest = client.get(f"/api/followups?status=open&cursor={first.json['next']}", headers=auth)
    assert len(rest.json["items"]) == 1
    assert rest.json["next"] is None
    task = first.json["items"][0]
    assert task["rule"] == "lead"
    assert task["status"] == "open"
    assert task["contact_id"] is not None

    done = client.post(f"/api/followups/{task['id']}/complete", headers=auth)
    assert done.status_code == 200
    assert done.json["status"] == "done"
    assert done.json["completed_at"] is not None
    assert client.post(f"/api/followups/{task['id']}/cancel", headers=auth).json["status"] == "done"
    still_open = client.get("/api/followups?status=open", headers=auth).json["items"]
    assert len(still_open) == 2
    assert len(client.get("/api/followups", headers=auth).json["items"]) == 3


def test_errors_are_problem_documents(app: Flask, api_key: str) -> None:
    client = app.test_client()
    auth = {"Authorization": f"Bearer {api_key}"}
    assert client.get("/api/followups").status_code == 401
    bad = client.get("/api/followups?status=later", headers=auth)
    assert bad.status_code == 400
    assert bad.content_type == "application/problem+json"
    assert bad.json["errors"][0]["field"] == "status"
    assert client.get("/api/followups?cursor=junk", headers=auth).status_code == 400
    missing = client.post("/api/followups/999999/complete", headers=auth)
    assert missing.status_code == 404
    assert missing.content_type == "application/problem+json"
    huge = client.post(f"/api/followups/{2**64}/complete", headers=auth)
    assert huge.status_code == 404
    assert client.post("/api/followups/1/snooze", headers=auth).status_code == 404


def test_one_followup_has_an_etag_of_its_document(app: Flask, api_key: str) -> None:
    make_tasks(app, 1)
    client = app.test_client()
    auth = {"Authorization": f"Bearer {api_key}"}
    [task] = client.get("/api/followups", headers=auth).json["items"]

    one = client.get(f"/api/followups/{task['id']}", headers=auth)
    assert (one.status_code, one.json) == (200, task)
    tag = one.headers["ETag"]
    held = client.get(f"/api/followups/{task['id']}", headers={**auth, "If-None-Match": tag})
    assert (held.status_code, held.headers["ETag"]) == (304, tag)
    # Closing it changes the document, and with it the ETag.
    client.post(f"/api/followups/{task['id']}/complete", headers=auth)
    closed = client.get(f"/api/followups/{task['id']}", headers={**auth, "If-None-Match": tag})
    assert (closed.status_code, closed.json["status"]) == (200, "done")
    assert closed.headers["ETag"] != tag
    for missing in (task["id"] + 1, 2**70):
        answer = client.get(f"/api/followups/{missing}", headers=auth)
        assert answer.status_code == 404
        assert answer.mimetype == "application/problem+json"
    assert client.get(f"/api/followups/{task['id']}").status_code == 401


def test_one_product_has_an_etag_of_its_document(app: Flask, api_key: str) -> None:
    with app.extensions["crm"].sessions.begin() as session:
        product = Product(sku="ENG-1", name="Difference engine", unit_price=12000, currency="GBP")
        session.add(product)
        session.flush()
        product_id = product.id
    client = app.test_client()
    auth = {"Authorization": f"Bearer {api_key}"}

    one = client.get(f"/api/products/{product_id}", headers=auth)
    assert one.status_code == 200
    assert (one.json["sku"], one.json["name"], one.json["currency"]) == (
        "ENG-1",
        "Difference engine",
        "GBP",
    )
    listed = client.get("/api/products", headers=auth).json["items"]
    assert [item for item in listed if item["id"] == product_id] == [one.json]
    tag = one.headers["ETag"]
    held = client.get(f"/api/products/{product_id}", headers={**auth, "If-None-Match": tag})
    assert held.status_code == 304
    assert client.get(f"/api/products/{product_id + 1}", headers=auth).status_code == 404
