"""Merges, deals and agreements over HTTP: redirects to survivors, problems, scopes."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from flask import Flask
from flask.testing import FlaskClient

from crm_core.campaigns.segments import parse_segment, segment_query
from crm_core.support.models import SupportCase

MERGE = "application/merge-patch+json"


def _customer(client: FlaskClient, auth: dict[str, str], n: int) -> dict:
    doc = {"name": f"Acme {n}", "primary_contact": {"email": f"ada{n}@acme.example"}}
    created = client.post("/api/customers", json=doc, headers=auth)
    assert created.status_code == 201, created.get_json()
    return created.get_json()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def writer(make_key: Callable[..., str]) -> dict[str, str]:
    return {"Authorization": f"Bearer {make_key('writer', 'read', 'write')}"}


def test_a_customer_merge_moves_its_rows_and_the_merged_id_redirects(
    app: Flask, client: FlaskClient, writer: dict[str, str]
) -> None:
    merged, survivor = _customer(client, writer, 1), _customer(client, writer, 2)
    with app.extensions["crm"].sessions.begin() as session:
        session.add(SupportCase(customer_id=merged["id"], subject="Broken", status="new"))
    deal = client.post(
        "/api/opportunities", json={"customer_id": merged["id"], "name": "Pilot"}, headers=writer
    ).get_json()

    answer = client.post(
        f"/api/customers/{merged['id']}/merge", json={"into": survivor["id"]}, headers=writer
    )
    assert answer.status_code == 200, answer.get_json()
    body = answer.get_json()
    assert body["id"] == survivor["id"]
    assert body["merged"] == merged["id"]
    assert body["moved"]["contacts"] == 1
    assert body["moved"]["cases"] == 1
    assert body["moved"]["opportunities"] == 1
    assert [c["is_primary"] for c in body["contacts"]] == [True, False]
    assert answer.headers["ETag"]

    for path in (f"/api/customers/{merged['id']}", f"/api/customers/{merged['id']}/timeline"):
        moved = client.get(path + "?limit=5", headers=writer)
        assert moved.status_code == 301, path
        assert moved.headers["Location"].startswith(
            path.replace(str(merged["id"]), str(survivor["id"]))
        )
    followed = client.get(f"/api/customers/{merged['id']}", headers=writer, follow_redirects=True)
    assert followed.get_json()["id"] == survivor["id"]
    assert (
        client.get(f"/api/opportunities/{deal['id']}", headers=writer).get_json()["customer_id"]
        == survivor["id"]
    )
    timeline = client.get(f"/api/customers/{survivor['id']}/timeline", headers=writer).get_json()
    assert "merged into customer" in timeline["items"][0]["summary"]

    for method, path, doc in (
        ("PATCH", f"/api/customers/{merged['id']}", {"name": "x"}),
        ("DELETE", f"/api/customers/{merged['id']}", None),
        ("POST", f"/api/customers/{merged['id']}/contacts", {"first_name": "x"}),
    ):
        # A stale If-Match does not hide the merge: the answer names the survivor.
        stale = {**writer, "If-Match": '"customer-1-v1"'}
        refused = client.open(path, method=method, json=doc, headers=stale)
        assert refused.status_code == 409, (method, path)
        assert refused.get_json()["merged_into"] == survivor["id"]
        assert refused.headers["Location"] == f"/api/customers/{survivor['id']}"
    again = client.post(
        f"/api/customers/{survivor['id']}/merge", json={"into": merged["id"]}, headers=writer
    )
    assert again.status_code == 409
    assert again.get_json()["errors"][0]["field"] == "into"
    itself = client.post(
        f"/api/customers/{survivor['id']}/merge", json={"into": survivor["id"]}, headers=writer
    )
    assert itself.status_code == 422
    assert itself.get_json()["errors"][0]["field"] == "into"
    assert (
        client.post("/api/customers/424242/merge", json={"into": 1}, headers=writer).status_code
        == 404
    )


def test_a_contact_merge_redirects_and_refuses_across_customers(
    client: FlaskClient, writer: dict[str, str]
) -> None:
    customer, other = _customer(client, writer, 1), _customer(client, writer, 2)
    first = customer["primary_contact_id"]
    second = client.post(
        f"/api/customers/{customer['id']}/contacts",
        json={"first_name": "Bob", "email": "bob@acme.example"},
        headers=writer,
    ).get_json()["id"]
    across = client.post(
        f"/api/contacts/{first}/merge", json={"into": other["primary_contact_id"]}, headers=writer
    )
    assert across.status_code == 422
    assert "merge the customers first" in across.get_json()["errors"][0]["message"]

    merged = client.post(f"/api/contacts/{first}/merge", json={"into": second}, headers=writer)
    assert merged.status_code == 200, merged.get_json()
    assert merged.get_json()["is_primary"] is True
    redirect = client.get(f"/api/contacts/{first}", headers=writer)
    assert redirect.status_code == 301
    assert redirect.headers["Location"] == f"/api/contacts/{second}"
    listed = client.get("/api/contacts", headers=writer).get_json()["items"]
    assert first not in [c["id"] for c in listed]
    shown = client.get(f"/api/customers/{customer['id']}", headers=writer).get_json()
    assert [c["id"] for c in shown["contacts"]] == [second]
    patched = client.patch(
        f"/api/contacts/{first}", data='{"notes": "x"}', content_type=MERGE, headers=writer
    )
    assert patched.status_code == 409
    assert patched.get_json()["merged_into"] == second


def test_deals_are_created_moved_to_won_and_their_agreement_terminated(
    client: FlaskClient, writer: dict[str, str]
) -> None:
    customer = _customer(client, writer, 1)
    created = client.post(
        "/api/opportunities",
        json={"customer_id": customer["id"], "name": "40 seats", "amount": 1200, "currency": "eur"},
        headers=writer,
    )
    assert created.status_code == 201, created.get_json()
    deal = created.get_json()
    assert created.headers["Location"] == f"/api/opportunities/{deal['id']}"
    assert (deal["stage"], deal["amount"], deal["agreements"]) == ("new", "1200.00", [])

    won = client.patch(
        f"/api/opportunities/{deal['id']}",
        data='{"stage": "won", "owner": "ann@example.com"}',
        content_type=MERGE,
        headers=writer,
    )
    assert won.status_code == 200, won.get_json()
    [agreement] = won.get_json()["agreements"]
    assert won.get_json()["owner"] == "ann@example.com"
    client.patch(f"/api/opportunities/{deal['id']}", json={"stage": "proposal"}, headers=writer)
    again = client.patch(f"/api/opportunities/{deal['id']}", json={"stage": "won"}, headers=writer)
    assert [a["id"] for a in again.get_json()["agreements"]] == [agreement["id"]]
    shown = client.get(f"/api/agreements/{agreement['id']}", headers=writer)
    assert shown.status_code == 200
    assert shown.get_json()["opportunity_ids"] == [deal["id"]]
    assert shown.headers["ETag"]

    bad = client.post(
        f"/api/agreements/{agreement['id']}/terminate",
        json={"terminated_on": "soon"},
        headers=writer,
    )
    assert bad.status_code == 422
    assert bad.get_json()["errors"][0]["field"] == "terminated_on"
    ended = client.post(
        f"/api/agreements/{agreement['id']}/terminate",
        json={"terminated_on": "2099-12-31"},
        headers=writer,
    )
    assert ended.status_code == 200, ended.get_json()
    assert (ended.get_json()["status"], ended.get_json()["terminates_on"]) == (
        "terminated",
        "2099-12-31",
    )
    twice = client.post(
        f"/api/agreements/{agreement['id']}/terminate",
        json={"terminated_on": "2099-12-31"},
        headers=writer,
    )
    assert twice.status_code == 409
    nulls = client.patch(f"/api/opportunities/{deal['id']}", json={"stage": None}, headers=writer)
    assert nulls.status_code == 422
    assert nulls.get_json()["errors"][0]["field"] == "stage"
    for method, path, doc in (
        ("PATCH", "/api/opportunities/424242", {"stage": "won"}),
        ("POST", "/api/agreements/424242/terminate", {"terminated_on": "2099-01-01"}),
        ("GET", "/api/agreements/424242", None),
        ("GET", f"/api/agreements/{2**64}", None),
    ):
        missing = client.open(path, method=method, json=doc, headers=writer)
        assert missing.status_code == 404, path


NEW_ROUTES = [
    ("POST", "/api/customers/1/merge", "write"),
    ("POST", "/api/contacts/1/merge", "write"),
    ("POST", "/api/opportunities", "write"),
    ("PATCH", "/api/opportunities/1", "write"),
    ("POST", "/api/agreements/1/terminate", "write"),
    ("GET", "/api/agreements/1", "read"),
]


@pytest.mark.parametrize(("method", "path", "scope"), NEW_ROUTES)
def test_each_new_route_names_the_scope_it_needs(
    client: FlaskClient, make_key: Callable[..., str], method: str, path: str, scope: str
) -> None:
    other = "send" if scope != "send" else "read"
    auth = {"Authorization": f"Bearer {make_key('narrow', other)}"}
    refused = client.open(path, method=method, json={}, headers=auth)
    assert refused.status_code == 403
    assert refused.mimetype == "application/problem+json"
    assert refused.get_json()["scope"] == scope
    allowed = {"Authorization": f"Bearer {make_key('wide', scope)}"}
    assert client.open(path, method=method, json={}, headers=allowed).status_code not in (401, 403)


def test_a_merged_contact_is_not_mailed_by_a_campaign(
    app: Flask, client: FlaskClient, writer: dict[str, str]
) -> None:
    customer = _customer(client, writer, 1)
    second = client.post(
        f"/api/customers/{customer['id']}/contacts",
        json={"email": "b@acme.example"},
        headers=writer,
    ).get_json()["id"]
    client.post(
        f"/api/contacts/{customer['primary_contact_id']}/merge",
        json={"into": second},
        headers=writer,
    )
    with app.extensions["crm"].sessions() as session:
        ids = list(session.scalars(segment_query(parse_segment({}))))
    assert ids == [second]
