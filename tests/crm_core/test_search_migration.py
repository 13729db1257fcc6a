"""Migration 0020: rows already there are searchable at once, and a downgrade takes the search
structures away and keeps the rows."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import inspect, text
from sqlalchemy.orm import Session

from crm_core import migrate as schema
from crm_core.db import make_engine
from crm_core.readapi.search import search
from tests.services import scratch_postgres_database


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'search.sqlite3'}"
        return
    request.getfixturevalue("postgres_available")
    with scratch_postgres_database("crm_search") as url:
        yield url


ROWS = [
    "INSERT INTO customers (id, kind, name, name_key, lifecycle_stage, attributes, tags,"
    " created_at, updated_at) VALUES (1, 'company', 'Zephyr Mills', 'zephyr mills', 'customer',"
    " '{}', '[]', :now, :now)",
    "INSERT INTO contacts (id, customer_id, is_primary, first_name, last_name, full_name, email,"
    " email_normalized, phone, attributes, tags, created_at, updated_at) VALUES (1, 1, true,"
    " 'Quinta', 'Marlowe', 'Quinta Marlowe', 'Q@Zephyr.example', 'q@zephyr.example',"
    " '+14155552671', '{}', '[]', :now, :now)",
    "INSERT INTO support_cases (id, customer_id, subject, status, priority, channel, created_at,"
    " updated_at) VALUES (1, 1, 'Conveyor belt squeaks', 'open', 'normal', 'email', :now, :now)",
]


def found(database: str, q: str) -> list[tuple[str, int]]:
    engine = make_engine(database)
    try:
        with Session(engine) as session:
            page = search(session, query=q, cursor=None, limit=10)
            return [(item["type"], item["id"]) for item in page.items]
    finally:
        engine.dispose()


def test_existing_rows_are_searchable_after_the_upgrade(database: str) -> None:
    schema.upgrade(database, revision="0015")
    engine = make_engine(database)
    try:
        with engine.begin() as conn:
            for statement in ROWS:
                conn.execute(text(statement), {"now": dt.datetime(2026, 12, 1)})
    finally:
        engine.dispose()
    schema.upgrade(database)
    assert found(database, "Marlowe") == [("contact", 1)]
    assert found(database, "q@zephyr.example") == [("contact", 1)]
    assert found(database, "(415) 555-2671") == [("contact", 1)]
    assert ("customer", 1) in found(database, "Zephyr")
    assert found(database, "conveyor") == [("case", 1)]

    schema.downgrade(database, revision="0015")
    engine = make_engine(database)
    try:
        names = set(inspect(engine).get_table_names())
        assert not {n for n in names if "_fts" in n}
        indexes = {i["name"] for i in inspect(engine).get_indexes("contacts")}
        assert not {n for n in indexes if n and n.startswith("ix_search_")}
        with engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM contacts")).scalar() == 1
    finally:
        engine.dispose()
    schema.upgrade(database)
    assert found(database, "Marlowe") == [("contact", 1)]


def test_sqlite_keeps_its_search_tables_in_step_by_triggers_at_head(tmp_path: Path) -> None:
    """A batch migration that rebuilds a searched table drops its triggers: this says so."""
    database = f"sqlite:///{tmp_path / 'triggers.sqlite3'}"
    schema.upgrade(database)
    engine = make_engine(database)
    try:
        with engine.connect() as conn:
            triggers = set(
                conn.execute(
                    text("SELECT name FROM sqlite_master WHERE type = 'trigger'")
                ).scalars()
            )
    finally:
        engine.dispose()
    for table in ("contacts_fts", "customers_fts", "support_cases_fts"):
        assert {f"{table}_insert", f"{table}_update", f"{table}_delete"} <= triggers
