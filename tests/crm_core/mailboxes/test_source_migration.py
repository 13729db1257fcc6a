"""Revision 0004 gives mailboxes added before it a source of their own."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from crm_core import migrate
from crm_core.db import make_engine
from tests.services import scratch_postgres_database


@pytest.fixture(params=["sqlite", "postgresql"])
def database_at_0003(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'old.sqlite3'}"
        migrate.upgrade(url, revision="0003")
        yield url
        return
    request.getfixturevalue("postgres_available")
    with scratch_postgres_database("crm_0004") as url:
        migrate.upgrade(url, revision="0003")
        yield url


def test_existing_mailboxes_get_their_source(database_at_0003: str) -> None:
    engine = make_engine(database_at_0003)
    try:
        with engine.begin() as conn:
            for name in ("support", "sales"):
                conn.execute(
                    text(
                        "INSERT INTO mailboxes (name, host, port, security, username, password,"
                        " folder, enabled, last_uid) VALUES (:name, 'h', 143, 'plain', 'u', 'p',"
                        " 'INBOX', true, 0)"
                    ),
                    {"name": name},
                )
        migrate.upgrade(database_at_0003)
        with engine.connect() as conn:
            rows = conn.execute(
                text(
                    "SELECT mailboxes.name, sources.name FROM mailboxes"
                    " JOIN sources ON sources.id = mailboxes.source_id ORDER BY mailboxes.name"
                )
            ).all()
        assert [tuple(row) for row in rows] == [
            ("sales", "mailbox-sales"),
            ("support", "mailbox-support"),
        ]
        migrate.downgrade(database_at_0003, revision="0003")
    finally:
        engine.dispose()
