"""The write API over HTTP: customers and contacts, problem documents, and the audit it leaves."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from flask import Flask
from flask.testing import FlaskClient

from crm_core.people import users
from crm_core.people.permissions import Actor
from crm_core.support.models import SupportCase

NEW = {
    "name": "Acme Ltd",
    "kind": "company",
    "tags": ["vip"],
    "primary_contact": {"first_name": "Ada", "last_name": "Lovelace", "email": "ada@acme.example"},
}
MERGE = "application/merge-patch+json"


@pytest.fixture
def writer(app: Flask, make_key: Callable[..., str]) -> dict[str, str]:
    return {"Authorization": f"Bearer {make_key('writer', 'read', 'write')}"}


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def test_create_update_primary_delete(client: FlaskClient, writer: dict[str, str]) -> None:
    created = client.post("/api/customers", json=NEW, headers=writer)
    assert created.status_code == 201, created.get_json()
    customer = created.get_json()
    assert created.headers["Location"] == f"/api/customers/{customer['id']}"
    assert customer["primary_contact_id"] == customer["contacts"][0]["id"]
    first = customer["primary_contact_id"]

    added = client.post(
        f"/api/customers/{customer['id']}/contacts",
        json={"first_name": "Charles", "email": "charles@acme.example"},
        headers=writer,
    )
    assert added.status_code == 201
    second = added.get_json()["id"]
    assert added.headers["Location"] == f"/api/contacts/{second}"

    patched = client.patch(
        f"/api/contacts/{second}",
        data='{"job_title": "Engineer", "attributes": {"shoe": 44}}',
        content_type=MERGE,
        headers=writer,
    )
    assert patched.status_code == 200
    assert patched.get_json()["job_title"] == "Engineer"

    promoted = client.post(f"/api/contacts/{second}/primary", headers=writer).get_json()
    assert promoted["primary_contact_id"] == second
    assert [c["is_primary"] for c in promoted["contacts"]] == [True, False]

    assert client.delete(f"/api/contacts/{first}", headers=writer).status_code == 204
    refused = client.delete(f"/api/contacts/{second}", headers=writer)
    assert refused.status_code == 409
    assert refused.mimetype == "application/problem+json"

    renamed = client.patch(
        f"/api/customers/{customer['id']}", json={"name": "Acme"}, headers=writer
    )
    assert renamed.get_json()["name"] == "Acme"
    assert client.delete(f"/api/customers/{customer['id']}", headers=writer).status_code == 204
    assert client.get(f"/api/customers/{customer['id']}", headers=writer).status_code == 404


def test_bad_documents_are_problems_naming_each_field(
    client: FlaskClient, writer: dict[str, str]
) -> None:
    bad = client.post(
        "/api/customers",
        json={"name": "", "kind": "robot", "primary_contact": {"email": "nope"}},
        headers=writer,
    )
    assert bad.status_code == 422
    assert bad.mimetype == "application/problem+json"
    fields = {e["field"] for e in bad.get_json()["errors"]}
    assert fields == {"name", "kind", "primary_contact.email"}
    for body in (b"not json", b"[1, 2]", b""):
        response = client.post(
            "/api/customers", data=body, content_type="application/json", headers=writer
        )
        assert response.status_code == 422, body
        assert response.get_json()["errors"][0]["field"] == "body"
    cleared = client.patch("/api/customers/1", json={"name": None}, headers=writer)
    assert cleared.status_code == 422  # the document is checked before the record is looked up


def test_unknown_and_huge_ids_are_404(client: FlaskClient, writer: dict[str, str]) -> None:
    for method, url in [
        ("PATCH", "/api/customers/424242"),
        ("DELETE", "/api/customers/424242"),
        ("POST", "/api/customers/424242/contacts"),
        ("PATCH", "/api/contacts/424242"),
        ("POST", "/api/contacts/424242/primary"),
        ("DELETE", f"/api/contacts/{2**64}"),
    ]:
        response = client.open(url, method=method, json={}, headers=writer)
        assert response.status_code == 404, (method, url, response.get_json())
        assert response.mimetype == "application/problem+json"


def test_a_duplicate_address_is_a_409_naming_the_field(
    client: FlaskClient, writer: dict[str, str]
) -> None:
    customer = client.post("/api/customers", json=NEW, headers=writer).get_json()
    duplicate = client.post(
        f"/api/customers/{customer['id']}/contacts",
        json={"email": "ADA@acme.example"},
        headers=writer,
    )
    assert duplicate.status_code == 409
    assert duplicate.get_json()["errors"][0]["field"] == "email"


def test_a_viewers_key_with_the_write_scope_still_cannot_write(
    app: Flask, client: FlaskClient, make_key: Callable[..., str]
) -> None:
    with app.extensions["crm"].sessions.begin() as session:
        users.add_user(
            session,
            actor=Actor.operator("t"),
            email="v@example.com",
            role="viewer",
            password="x" * 12,
        )
    auth = {"Authorization": f"Bearer {make_key('v', 'read', 'write', user='v@example.com')}"}
    refused = client.post("/api/customers", json=NEW, headers=auth)
    assert refused.status_code == 403
    assert refused.get_json()["scope"] == "write"
    assert "role 'viewer'" in refused.get_json()["detail"]


def test_the_audit_api_shows_who_changed_what(
    client: FlaskClient, writer: dict[str, str], make_key: Callable[..., str]
) -> None:
    customer = client.post("/api/customers", json=NEW, headers=writer).get_json()
    client.patch(f"/api/customers/{customer['id']}", json={"tags": ["churn-risk"]}, headers=writer)
    admin = {"Authorization": f"Bearer {make_key('auditor', 'admin')}"}

    page = client.get(f"/api/audit?entity=customer&id={customer['id']}", headers=admin).get_json()
    assert [e["action"] for e in page["items"]] == ["update", "create"]
    assert page["items"][0]["actor"] == "api_key:writer"
    assert page["items"][0]["changes"] == {"tags": {"before": ["vip"], "after": ["churn-risk"]}}

    by_writer = client.get("/api/audit?actor=api_key:writer&limit=1", headers=admin).get_json()
    assert len(by_writer["items"]) == 1
    assert by_writer["next"]
    rest = client.get(f"/api/audit?actor=api_key:writer&cursor={by_writer['next']}", headers=admin)
    assert len(rest.get_json()["items"]) == 2  # the contact's creation and the customer's
    assert (
        client.get("/api/audit?since=2999-01-01T00:00:00Z", headers=admin).get_json()["items"] == []
    )

    for query in ("since=yesterday", "id=abc", "limit=0", "cursor=zzz"):
        bad = client.get(f"/api/audit?{query}", headers=admin)
        assert bad.status_code == 400, query
        assert bad.mimetype == "application/problem+json"
    # Reading the audit log needs the admin scope.
    assert client.get("/api/audit", headers=writer).get_json()["scope"] == "admin"


def test_a_case_is_changed_over_http(
    app: Flask, client: FlaskClient, writer: dict[str, str], make_key: Callable[..., str]
) -> None:
    customer = client.post("/api/customers", json=NEW, headers=writer).get_json()
    with app.extensions["crm"].sessions.begin() as session:
        case = SupportCase(customer_id=customer["id"], subject="Broken", status="new")
        session.add(case)
        session.flush()
        case_id = case.id
        users.add_user(
            session,
            actor=Actor.operator("t"),
            email="ann@example.com",
            role="agent",
            password="x" * 12,
        )
    changed = client.patch(
        f"/api/cases/{case_id}",
        json={"status": "open", "priority": "high", "assignee": "ann@example.com"},
        headers=writer,
    )
    assert changed.status_code == 200, changed.get_json()
    assert {k: changed.get_json()[k] for k in ("status", "priority", "assignee")} == {
        "status": "open",
        "priority": "high",
        "assignee": "ann@example.com",
    }
    refused = client.patch(f"/api/cases/{case_id}", json={"status": "new"}, headers=writer)
    assert refused.status_code == 409
    assert refused.get_json()["errors"][0]["field"] == "status"
    reader = {"Authorization": f"Bearer {make_key('reader')}"}
    assert client.patch(f"/api/cases/{case_id}", json={}, headers=reader).status_code == 403


def test_a_cases_tags_are_replaced_cleared_and_audited(
    app: Flask, client: FlaskClient, writer: dict[str, str], make_key: Callable[..., str]
) -> None:
    customer = client.post("/api/customers", json=NEW, headers=writer).get_json()
    with app.extensions["crm"].sessions.begin() as session:
        case = SupportCase(customer_id=customer["id"], subject="Broken", status="new")
        session.add(case)
        session.flush()
        case_id = case.id
    assert client.get(f"/api/cases/{case_id}", headers=writer).get_json()["tags"] == []
    tagged = client.patch(
        f"/api/cases/{case_id}", json={"tags": ["billing", "vip", "billing"]}, headers=writer
    )
    assert tagged.status_code == 200, tagged.get_json()
    assert tagged.get_json()["tags"] == ["billing", "vip"]
    cleared = client.patch(f"/api/cases/{case_id}", json={"tags": None}, headers=writer)
    assert cleared.get_json()["tags"] == []
    bad = client.patch(f"/api/cases/{case_id}", json={"tags": ["x" * 61]}, headers=writer)
    assert bad.status_code == 422
    assert bad.get_json()["errors"][0]["field"] == "tags.0"
    admin = {"Authorization": f"Bearer {make_key('auditor', 'admin')}"}
    page = client.get(f"/api/audit?entity=support_case&id={case_id}", headers=admin).get_json()
    assert [e["changes"] for e in page["items"]] == [
        {"tags": {"before": ["billing", "vip"], "after": []}},
        {"tags": {"before": [], "after": ["billing", "vip"]}},
    ]


def test_an_activity_is_logged_over_http(client: FlaskClient, writer: dict[str, str]) -> None:
    customer = client.post("/api/customers", json=NEW, headers=writer).get_json()
    logged = client.post(
        "/api/activities",
        json={"type": "meeting", "summary": "Kick-off", "customer_id": customer["id"]},
        headers=writer,
    )
    assert logged.status_code == 201, logged.get_json()
    assert logged.get_json()["details"]["author"] == "api_key:writer"
    timeline = client.get(f"/api/customers/{customer['id']}/timeline", headers=writer).get_json()
    assert [a["summary"] for a in timeline["items"]] == ["Kick-off"]
    bad = client.post("/api/activities", json={"type": "fax", "summary": "x"}, headers=writer)
    assert bad.status_code == 422
    assert bad.get_json()["errors"][0]["field"] == "type"


def test_hostile_bodies_get_problems_not_500s(
    app: Flask, client: FlaskClient, writer: dict[str, str]
) -> None:
    deep = (
        '{"name": "x", "primary_contact": {}, "attributes": {"a": ' + "[" * 5000 + "]" * 5000 + "}}"
    )
    nested = client.post(
        "/api/customers", data=deep, content_type="application/json", headers=writer
    )
    assert nested.status_code == 422
    assert "nested deeper" in nested.get_json()["detail"]
    limit = app.extensions["crm"].settings.max_json_bytes
    huge = '{"name": "' + "x" * limit + '"}'
    too_large = client.post(
        "/api/customers", data=huge, content_type="application/json", headers=writer
    )
    assert too_large.status_code == 413
    assert too_large.mimetype == "application/problem+json"
    not_utf8 = client.post(
        "/api/customers", data=b"\xff\xfe{}", content_type="application/json", headers=writer
    )
    assert not_utf8.status_code == 422
