"""Revision 0013: keys made before scopes existed keep every scope; customers get attributes."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from crm_core import migrate
from crm_core.db import make_engine
from tests.services import scratch_postgres_database


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'empty.sqlite3'}"
        return
    request.getfixturevalue("postgres_available")
    with scratch_postgres_database("crm_people") as url:
        yield url


def test_existing_keys_get_every_scope_and_customers_empty_attributes(empty_database: str) -> None:
    migrate.upgrade(empty_database, revision="0007")
    engine = make_engine(empty_database)
    try:
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO api_keys (id, name, prefix, key_hash, created_at)"
                    " VALUES (1, 'old', 'crm_abc', 'digest', :now)"
                ),
                {"now": dt.datetime(2026, 1, 1)},
            )
            conn.execute(
                text(
                    "INSERT INTO customers (id, kind, name, name_key, lifecycle_stage, tags)"
                    " VALUES (1, 'person', 'Ann', 'ann', 'lead', '[]')"
                )
            )
        migrate.upgrade(empty_database, revision="0013")
        with engine.connect() as conn:
            scopes = conn.execute(text("SELECT scopes, user_id FROM api_keys")).one()
            attributes = conn.execute(text("SELECT attributes FROM customers")).scalar()
        loaded = scopes[0] if isinstance(scopes[0], list) else json.loads(scopes[0])
        assert loaded == ["read", "write", "send", "admin"]
        assert scopes[1] is None
        assert (attributes if isinstance(attributes, dict) else json.loads(attributes)) == {}
        migrate.downgrade(empty_database, revision="0007")
        with engine.connect() as conn:
            assert conn.execute(text("SELECT name FROM api_keys")).scalar() == "old"
    finally:
        engine.dispose()
