"""Migration 0014: existing sources become standard; ignored events are allowed, then dropped."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from crm_core import migrate
from crm_core.db import make_engine
from tests.services import scratch_postgres_database


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'providers.sqlite3'}"
        return
    request.getfixturevalue("postgres_available")
    with scratch_postgres_database("crm_providers") as url:
        yield url


INSERT_EVENT = text(
    "INSERT INTO inbox_events (source_id, kind, webhook_id, content_type, headers, body,"
    " status, attempts, received_at) VALUES (1, 'orders', :id, 'application/json', '{}',"
    " :body, :status, 0, :now)"
)


def test_existing_sources_are_standard_and_ignored_is_a_status(database: str) -> None:
    migrate.upgrade(database, revision="0007")
    engine = make_engine(database)
    now = dt.datetime(2026, 12, 1)
    try:
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO sources (id, name, enabled, created_at, updated_at)"
                    " VALUES (1, 'website', true, :now, :now)"
                ),
                {"now": now},
            )
            conn.execute(INSERT_EVENT, {"id": "b", "body": b"{}", "status": "received", "now": now})
            conn.execute(text("INSERT INTO event_entities VALUES (1, 'contact', 7)"))
        with pytest.raises(IntegrityError), engine.begin() as conn:
            conn.execute(INSERT_EVENT, {"id": "a", "body": b"{}", "status": "ignored", "now": now})
        migrate.upgrade(database, revision="0014")
        # Nothing was rebuilt: what pointed at an event still does.
        with engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM event_entities")).scalar_one() == 1
            if conn.dialect.name == "sqlite":
                assert conn.exec_driver_sql("PRAGMA integrity_check").scalar_one() == "ok"
        with engine.begin() as conn:
            assert conn.execute(text("SELECT provider FROM sources")).scalar_one() == "standard"
            conn.execute(INSERT_EVENT, {"id": "a", "body": b"{}", "status": "ignored", "now": now})
        with pytest.raises(IntegrityError), engine.begin() as conn:
            conn.execute(text("UPDATE sources SET provider = 'myspace'"))
        migrate.downgrade(database, revision="0007")
        with engine.connect() as conn:
            left = conn.execute(text("SELECT webhook_id FROM inbox_events")).scalars().all()
        assert left == ["b"]
        with engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM event_entities")).scalar_one() == 1
    finally:
        engine.dispose()
