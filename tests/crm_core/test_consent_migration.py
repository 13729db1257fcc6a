"""Migration 0016: a Shopify consent kept in a contact's attributes moves into its consent
columns, with the source that said it, and back again on a downgrade."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from crm_core import migrate as schema
from crm_core.db import make_engine
from tests.keyring import TEST_KEYRING
from tests.services import scratch_postgres_database

T = dt.datetime(2026, 12, 1)
CONSENT = {
    "state": "unsubscribed",
    "opt_in_level": "confirmed_opt_in",
    "consent_updated_at": "2026-11-30T10:13:40-05:00",
}
SMS = {"state": "not_subscribed", "opt_in_level": "single_opt_in"}


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'consent.sqlite3'}"
        return
    request.getfixturevalue("postgres_available")
    with scratch_postgres_database("crm_consent") as url:
        yield url


def _seed(url: str) -> None:
    engine = make_engine(url, keyring=TEST_KEYRING)
    rows = [
        "INSERT INTO sources (id, name, provider, enabled, created_at, updated_at)"
        " VALUES (1, 'web', 'standard', true, :t, :t), (2, 'shop', 'shopify', true, :t, :t)",
        "INSERT INTO customers (id, kind, name, name_key, lifecycle_stage, attributes, tags,"
        " created_at, updated_at) VALUES (1, 'person', 'Ada', 'ada', 'lead', '{}', '[]', :t, :t)",
        "INSERT INTO contacts (id, customer_id, is_primary, email, email_normalized, attributes,"
        " tags, created_at, updated_at) VALUES"
        " (1, 1, true, 'ada@example.com', 'ada@example.com', :shopify, '[]', :t, :t),"
        " (2, 1, false, 'bob@example.com', 'bob@example.com', :other, '[]', :t, :t),"
        " (3, 1, false, 'cy@example.com', 'cy@example.com', :odd, '[]', :t, :t)",
        "INSERT INTO inbox_events (id, source_id, kind, webhook_id, topic, content_type, headers,"
        " body, status, attempts, received_at) VALUES"
        " (1, 1, 'leads', 'w-1', NULL, 'application/json', '{}', :body, 'processed', 1, :t),"
        " (2, 2, 'leads', 'w-2', 'customers/create', 'application/json', '{}', :body,"
        " 'processed', 1, :t)",
        "INSERT INTO activities (id, type, direction, occurred_at, summary, details, customer_id,"
        " contact_id, event_id) VALUES"
        " (1, 'lead_captured', 'inbound', :t, 'web', '{}', 1, 1, 1),"
        " (2, 'lead_captured', 'inbound', :t, 'shop', '{}', 1, 1, 2)",
    ]
    values = {
        "t": T,
        "body": b"{}",
        "shopify": json.dumps({"email_marketing_consent": CONSENT, "sms_marketing_consent": SMS}),
        "other": json.dumps({"plan": "pro"}),
        "odd": json.dumps({"email_marketing_consent": {"state": "whatever"}}),
    }
    try:
        with engine.begin() as conn:
            for statement in rows:
                conn.execute(text(statement), values)
    finally:
        engine.dispose()


def _attributes(value: object) -> dict[str, object]:
    return json.loads(value) if isinstance(value, str) else dict(value)  # type: ignore[arg-type]


def test_a_shopify_consent_moves_into_the_columns_and_back(database: str) -> None:
    schema.upgrade(database, revision="0015", keyring=TEST_KEYRING)
    _seed(database)
    schema.upgrade(database, revision="0016", keyring=TEST_KEYRING)
    engine = make_engine(database, keyring=TEST_KEYRING)
    try:
        with engine.begin() as conn:
            rows = conn.execute(
                text(
                    "SELECT id, attributes, marketing_consent, marketing_consent_at,"
                    " marketing_consent_source_id, marketing_consent_method FROM contacts"
                    " ORDER BY id"
                )
            ).all()
            ada, bob, cy = rows
            assert _attributes(ada.attributes) == {"sms_marketing_consent": SMS}
            assert (
                ada.marketing_consent,
                ada.marketing_consent_source_id,
                ada.marketing_consent_method,
            ) == ("denied", 2, "confirmed_opt_in")
            at = ada.marketing_consent_at
            at = dt.datetime.fromisoformat(at) if isinstance(at, str) else at
            assert at.replace(tzinfo=at.tzinfo or dt.UTC) == dt.datetime(
                2026, 11, 30, 15, 13, 40, tzinfo=dt.UTC
            )
            assert (_attributes(bob.attributes), bob.marketing_consent) == ({"plan": "pro"}, None)
            # A state this platform cannot read stays where it was.
            assert cy.marketing_consent is None
            assert _attributes(cy.attributes)["email_marketing_consent"] == {"state": "whatever"}
            conn.execute(
                text(
                    "INSERT INTO sources (id, name, provider, enabled, allowed_origins,"
                    " created_at, updated_at) VALUES"
                    " (3, 'form', 'form', true, :origins, :t, :t)"
                ),
                {"origins": json.dumps(["https://example.com"]), "t": T},
            )
            if conn.dialect.name == "sqlite":
                assert conn.exec_driver_sql("PRAGMA integrity_check").scalar_one() == "ok"
        schema.downgrade(database, revision="0015", keyring=TEST_KEYRING)
        with engine.connect() as conn:
            restored = _attributes(
                conn.execute(text("SELECT attributes FROM contacts WHERE id = 1")).scalar_one()
            )
            assert restored["email_marketing_consent"]["state"] == "unsubscribed"
            assert restored["email_marketing_consent"]["opt_in_level"] == "confirmed_opt_in"
            assert restored["sms_marketing_consent"] == SMS
            form = conn.execute(text("SELECT provider, enabled FROM sources WHERE id = 3")).one()
            assert (form.provider, bool(form.enabled)) == ("standard", False)
            assert conn.execute(text("SELECT count(*) FROM activities")).scalar_one() == 2
        schema.upgrade(database, keyring=TEST_KEYRING)
        with engine.connect() as conn:
            assert (
                conn.execute(
                    text("SELECT marketing_consent FROM contacts WHERE id = 1")
                ).scalar_one()
                == "denied"
            )
    finally:
        engine.dispose()
