"""Migration 0019 (after 0017): existing rows start at version 1, merged into nothing, and keep
their consent; the key holds."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from crm_core import migrate as schema
from crm_core.db import make_engine
from tests.services import scratch_postgres_database


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'merges.sqlite3'}"
        return
    request.getfixturevalue("postgres_available")
    with scratch_postgres_database("crm_merges") as url:
        yield url


def test_rows_keep_their_data_and_a_tombstone_goes_with_its_survivor(database: str) -> None:
    schema.upgrade(database, revision="0017")
    engine = make_engine(database)
    try:
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO customers (id, kind, name, name_key, lifecycle_stage, tags,"
                    " attributes) VALUES (1, 'company', 'Acme', 'acme', 'lead', '[]', '{}'),"
                    " (2, 'company', 'Acme Ltd', 'acme ltd', 'lead', '[]', '{}')"
                )
            )
            conn.execute(
                text(
                    "INSERT INTO contacts (id, customer_id, is_primary, email, email_normalized,"
                    " attributes, tags, marketing_consent, marketing_consent_method) VALUES"
                    " (1, 1, true, 'a@acme.example', 'a@acme.example', '{}', '[]', 'granted',"
                    " 'form_checkbox')"
                )
            )
        engine.dispose()
        schema.upgrade(database)
        with engine.begin() as conn:
            rows = conn.execute(
                text("SELECT id, version, merged_into FROM customers ORDER BY id")
            ).all()
            assert [tuple(r) for r in rows] == [(1, 1, None), (2, 1, None)]
            contact = conn.execute(
                text(
                    "SELECT email, version, merged_into, marketing_consent,"
                    " marketing_consent_method FROM contacts"
                )
            ).one()
            assert tuple(contact) == ("a@acme.example", 1, None, "granted", "form_checkbox")
        with pytest.raises(IntegrityError), engine.begin() as conn:
            conn.execute(text("UPDATE customers SET merged_into = 99 WHERE id = 1"))
        with engine.begin() as conn:
            conn.execute(text("UPDATE customers SET merged_into = 2 WHERE id = 1"))
            conn.execute(text("DELETE FROM contacts"))
            conn.execute(text("DELETE FROM customers WHERE id = 2"))
            assert conn.execute(text("SELECT count(*) FROM customers")).scalar() == 0
            conn.execute(
                text(
                    "INSERT INTO customers (id, kind, name, name_key, lifecycle_stage, tags,"
                    " attributes) VALUES (3, 'person', 'Ann', 'ann', 'lead', '[]', '{}')"
                )
            )
        engine.dispose()
        schema.downgrade(database, revision="0017")
        with engine.begin() as conn:
            assert conn.execute(text("SELECT name FROM customers")).scalar() == "Ann"
        schema.upgrade(database)
    finally:
        engine.dispose()
