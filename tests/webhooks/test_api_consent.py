"""Marketing consent through the write API: stated on create or by a merge patch, by the rule
senders' statements follow, validated, shown on the contact, and audited."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import pytest
from flask import Flask
from flask.testing import FlaskClient

NEW = {
    "name": "Acme Ltd",
    "kind": "company",
    "primary_contact": {
        "email": "ada@acme.example",
        "marketing_consent": {"status": "granted", "method": "signed_form"},
    },
}


@pytest.fixture
def writer(make_key: Callable[..., str]) -> dict[str, str]:
    return {"Authorization": f"Bearer {make_key('writer', 'read', 'write')}"}


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def test_consent_is_stated_on_create_withdrawn_by_patch_and_audited(
    client: FlaskClient, writer: dict[str, str], make_key: Callable[..., str]
) -> None:
    before = dt.datetime.now(dt.UTC)
    customer = client.post("/api/customers", json=NEW, headers=writer).get_json()
    contact_id = customer["primary_contact_id"]
    consent = client.get(f"/api/contacts/{contact_id}", headers=writer).get_json()[
        "marketing_consent"
    ]
    assert (consent["status"], consent["method"], consent["source"]) == (
        "granted",
        "signed_form",
        None,
    )
    assert dt.datetime.fromisoformat(consent["at"]) >= before.replace(microsecond=0)

    withdrawn_at = "2031-01-01T09:00:00+01:00"
    patched = client.patch(
        f"/api/contacts/{contact_id}",
        json={"marketing_consent": {"status": "denied", "at": withdrawn_at, "method": "phone"}},
        headers=writer,
    )
    # 2031 is in the future: refused, naming the field.
    assert patched.status_code == 422
    assert patched.get_json()["errors"][0]["field"] == "marketing_consent.at"

    now = dt.datetime.now(dt.UTC).isoformat()
    patched = client.patch(
        f"/api/contacts/{contact_id}",
        json={"marketing_consent": {"status": "denied", "at": now, "method": "phone"}},
        headers=writer,
    )
    assert patched.status_code == 200, patched.get_json()
    assert patched.get_json()["marketing_consent"]["status"] == "denied"

    admin = {"Authorization": f"Bearer {make_key('auditor', 'admin')}"}
    page = client.get(f"/api/audit?entity=contact&id={contact_id}", headers=admin).get_json()
    update, create = page["items"]
    assert create["changes"]["marketing_consent"] == {"before": None, "after": "granted"}
    assert create["changes"]["marketing_consent_method"]["after"] == "signed_form"
    assert update["actor"] == "api_key:writer"
    assert update["changes"]["marketing_consent"] == {"before": "granted", "after": "denied"}
    assert update["changes"]["marketing_consent_method"] == {
        "before": "signed_form",
        "after": "phone",
    }
    assert set(update["changes"]) == {
        "marketing_consent",
        "marketing_consent_at",
        "marketing_consent_method",
    }


def test_an_older_statement_than_the_one_on_record_is_a_409(
    client: FlaskClient, writer: dict[str, str]
) -> None:
    customer = client.post("/api/customers", json=NEW, headers=writer).get_json()
    contact_id = customer["primary_contact_id"]
    stale = client.patch(
        f"/api/contacts/{contact_id}",
        json={"marketing_consent": {"status": "denied", "at": "2020-01-01T00:00:00Z"}},
        headers=writer,
    )
    assert stale.status_code == 409
    assert stale.mimetype == "application/problem+json"
    assert stale.get_json()["errors"][0]["field"] == "marketing_consent"
    shown = client.get(f"/api/contacts/{contact_id}", headers=writer).get_json()
    assert shown["marketing_consent"]["status"] == "granted"


@pytest.mark.parametrize(
    ("consent", "loc"),
    [
        (None, "marketing_consent"),
        ({"status": "unknown"}, "marketing_consent.status"),
        ({"status": "granted", "at": "soon"}, "marketing_consent.at"),
        ({"status": "granted", "method": "x" * 81}, "marketing_consent.method"),
        ({"status": "granted", "source": "web"}, "marketing_consent.source"),
        ("granted", "marketing_consent"),
    ],
)
def test_a_bad_consent_is_a_problem_naming_the_field(
    client: FlaskClient, writer: dict[str, str], consent: object, loc: str
) -> None:
    customer = client.post("/api/customers", json=NEW, headers=writer).get_json()
    contact_id = customer["primary_contact_id"]
    bad = client.patch(
        f"/api/contacts/{contact_id}", json={"marketing_consent": consent}, headers=writer
    )
    assert bad.status_code == 422, bad.get_json()
    assert bad.mimetype == "application/problem+json"
    assert bad.get_json()["errors"][0]["field"] == loc
    created = client.post(
        f"/api/customers/{customer['id']}/contacts",
        json={"email": "bob@acme.example", "marketing_consent": consent},
        headers=writer,
    )
    assert created.status_code == 422
    assert created.get_json()["errors"][0]["field"] == loc
