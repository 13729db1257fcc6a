"""Alembic owns the schema: head on an empty database matches the models exactly."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text

from crm_core import migrate
from crm_core.db import make_engine
from crm_core.models import metadata
from tests.services import scratch_postgres_database


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'empty.sqlite3'}"
        return
    request.getfixturevalue("postgres_available")
    with scratch_postgres_database("crm_drift") as url:
        yield url


def test_upgrade_head_leaves_nothing_for_autogenerate(empty_database: str) -> None:
    migrate.upgrade(empty_database)
    engine = make_engine(empty_database)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(
                conn, opts={"compare_type": True, "compare_server_default": True}
            )
            assert compare_metadata(context, metadata) == []
            head = ScriptDirectory.from_config(migrate.alembic_config()).get_current_head()
            assert migrate.current_heads(conn) == {head}
    finally:
        engine.dispose()


def test_upgrade_is_repeatable_and_downgrade_removes_everything(empty_database: str) -> None:
    migrate.upgrade(empty_database)
    migrate.upgrade(empty_database)
    engine = make_engine(empty_database)
    try:
        assert set(metadata.tables) <= set(inspect(engine).get_table_names())
        migrate.downgrade(empty_database, revision="base")
        assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    finally:
        engine.dispose()


def test_message_references_are_backfilled_from_stored_emails(empty_database: str) -> None:
    migrate.upgrade(empty_database, revision="0004")
    engine = make_engine(empty_database)
    try:
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO activities (id, type, direction, occurred_at, summary, details,"
                    " message_id) VALUES (1, 'email_received', 'inbound', :now, 'Re: x', :details,"
                    " 'reply@x.example'), (2, 'note', 'internal', :now, 'n', :empty, NULL)"
                ),
                {
                    "now": dt.datetime(2026, 1, 1),
                    "details": json.dumps(
                        {
                            "in_reply_to": ["root@x.example"],
                            "references": ["root@x.example", "mid@x.example"],
                        }
                    ),
                    "empty": "{}",
                },
            )
        migrate.upgrade(empty_database, revision="0005")
        with engine.connect() as conn:
            rows = conn.execute(
                text("SELECT activity_id, message_id FROM message_references ORDER BY message_id")
            ).all()
        assert [tuple(r) for r in rows] == [(1, "mid@x.example"), (1, "root@x.example")]
    finally:
        engine.dispose()
