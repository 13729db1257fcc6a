"""Upgrading a database that holds data keeps every row, on every backend.

On SQLite, batch mode rebuilds a table (create a copy, DROP the old one,
rename). With foreign keys on, that DROP deletes the old rows one by one and
fires ON DELETE CASCADE / SET NULL on the rows pointing at them, or fails on
RESTRICT. Every table that exists at 0007 gets a row here, linked by its
foreign keys, and the rows must come through the upgrade to head, a downgrade
back to 0007 and the upgrade again unchanged.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.script import ScriptDirectory
from click.testing import CliRunner
from sqlalchemy import Engine, inspect, text

import crm_cli.main
from crm_cli.main import cli
from crm_core import migrate
from crm_core.config import Settings
from crm_core.db import make_engine
from tests.keyring import TEST_KEYRING
from tests.services import scratch_postgres_database

BEFORE = "0007"
T = "'2026-01-01 00:00:00'"

# One row per table at 0007, parents first, every foreign key filled in.
SEED: dict[str, str] = {
    "api_keys": "INSERT INTO api_keys (id, name, prefix, key_hash, created_at)"
    f" VALUES (1, 'old', 'crm_abc', 'digest', {T})",
    "customers": "INSERT INTO customers (id, kind, name, name_key, lifecycle_stage, tags)"
    " VALUES (1, 'company', 'Acme', 'acme', 'customer', '[]')",
    "marketing_campaigns": "INSERT INTO marketing_campaigns (id, code, name, status, segment)"
    " VALUES (1, 'spring', 'Spring', 'sent', '{}')",
    "products": "INSERT INTO products (id, sku, name, kind)"
    " VALUES (1, 'SKU-1', 'Widget', 'product')",
    "sources": "INSERT INTO sources (id, name) VALUES (1, 'web')",
    "worker_heartbeats": "INSERT INTO worker_heartbeats (hostname, pid, last_seen_at, beats)"
    f" VALUES ('host', 1, {T}, 1)",
    "contacts": "INSERT INTO contacts (id, customer_id, is_primary, email, email_normalized,"
    " attributes, tags) VALUES (1, 1, true, 'ann@acme.example', 'ann@acme.example', '{}', '[]')",
    "campaign_members": "INSERT INTO campaign_members (campaign_id, customer_id, status, added_at)"
    f" VALUES (1, 1, 'targeted', {T})",
    "external_refs": "INSERT INTO external_refs (id, source_id, entity_type, external_id,"
    f" entity_id, created_at) VALUES (1, 1, 'customer', 'ext-1', 1, {T})",
    "inbox_events": "INSERT INTO inbox_events (id, source_id, kind, webhook_id, content_type,"
    " headers, body, status, attempts, received_at) VALUES (1, 1, 'leads', 'wh-1',"
    f" 'application/json', '{{}}', :body, 'processed', 1, {T})",
    "source_secrets": "INSERT INTO source_secrets (id, source_id, secret, created_at)"
    f" VALUES (1, 1, 'signing secret', {T})",
    "suppressions": "INSERT INTO suppressions (id, email_normalized, reason, campaign_id)"
    " VALUES (1, 'gone@acme.example', 'unsubscribed', 1)",
    "campaign_sends": "INSERT INTO campaign_sends (id, campaign_id, contact_id, email, status,"
    f" attempts, created_at) VALUES (1, 1, 1, 'ann@acme.example', 'sent', 1, {T})",
    "event_entities": "INSERT INTO event_entities (event_id, entity_type, entity_id)"
    " VALUES (1, 'customer', 1)",
    "opportunities": "INSERT INTO opportunities (id, customer_id, contact_id, source_id, name,"
    " stage) VALUES (1, 1, 1, 1, 'Deal', 'won')",
    "orders": "INSERT INTO orders (id, customer_id, contact_id, source_id, order_number, status,"
    f" currency, total, ordered_at) VALUES (1, 1, 1, 1, 'A-1', 'paid', 'EUR', 10, {T})",
    "support_cases": "INSERT INTO support_cases (id, customer_id, contact_id, source_id, subject,"
    " status, priority, channel) VALUES (1, 1, 1, 1, 'Help', 'open', 'normal', 'email')",
    "agreements": "INSERT INTO agreements (id, number, customer_id, origin_opportunity_id, title,"
    " status, effective_on) VALUES (1, 'AG-1', 1, 1, 'Support', 'active', '2026-01-01')",
    "followup_tasks": "INSERT INTO followup_tasks (id, rule, subject_type, subject_id, customer_id,"
    " contact_id, opportunity_id, support_case_id, title, status, due_at)"
    f" VALUES (1, 'stale', 'support_case', 1, 1, 1, 1, 1, 'Call back', 'open', {T})",
    "order_lines": "INSERT INTO order_lines (id, order_id, product_id, line_no, quantity,"
    " unit_price, line_total) VALUES (1, 1, 1, 1, 1, 10, 10)",
    "activities": "INSERT INTO activities (id, type, direction, occurred_at, summary, details,"
    " message_id, customer_id, contact_id, opportunity_id, agreement_id, order_id,"
    f" support_case_id, campaign_id, event_id) VALUES (1, 'email_received', 'inbound', {T},"
    " 'Re: help', '{}', 'reply@acme.example', 1, 1, 1, 1, 1, 1, 1, 1)",
    "agreement_opportunities": "INSERT INTO agreement_opportunities (agreement_id, opportunity_id)"
    " VALUES (1, 1)",
    "mailboxes": "INSERT INTO mailboxes (id, name, host, port, security, username, password,"
    " folder, source_id) VALUES (1, 'support', 'imap.example', 993, 'tls', 'u', 'imap password',"
    " 'INBOX', 1)",
    "message_references": "INSERT INTO message_references (activity_id, message_id)"
    " VALUES (1, 'root@acme.example')",
    "subscriptions": "INSERT INTO subscriptions (id, url, events, secret, enabled)"
    " VALUES (1, 'https://hooks.example/', '[\"*\"]', 'subscription secret', true)",
    "notification_deliveries": "INSERT INTO notification_deliveries (id, subscription_id,"
    " event_type, payload, status, attempts, next_attempt_at)"
    f" VALUES (1, 1, 'customer.created', '{{}}', 'delivered', 1, {T})",
    "delivery_attempts": "INSERT INTO delivery_attempts (id, delivery_id, attempted_at,"
    f" duration_ms) VALUES (1, 1, {T}, 5)",
}

# Revision 0011 encrypts these at head (and its downgrade decrypts them again).
ENCRYPTED = {("source_secrets", "secret"), ("subscriptions", "secret"), ("mailboxes", "password")}


@pytest.fixture(params=["sqlite", "postgresql"])
def database_at_0007(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'old.sqlite3'}"
        migrate.upgrade(url, revision=BEFORE)
        yield url
        return
    request.getfixturevalue("postgres_available")
    with scratch_postgres_database("crm_keep") as url:
        migrate.upgrade(url, revision=BEFORE)
        yield url


def _snapshot(engine: Engine, columns: dict[str, list[str]], *, at_head: bool) -> dict[str, Any]:
    """Every row of every table, as the columns it had at 0007, in a stable order."""
    rows: dict[str, Any] = {}
    with engine.connect() as conn:
        for table, names in columns.items():
            kept = [n for n in names if not (at_head and (table, n) in ENCRYPTED)]
            found = conn.execute(text(f"SELECT {', '.join(kept)} FROM {table}")).all()
            rows[table] = sorted(tuple(map(repr, row)) for row in found)
    return rows


def test_every_row_survives_upgrade_and_downgrade(database_at_0007: str) -> None:
    url = database_at_0007
    engine = make_engine(url)
    try:
        inspector = inspect(engine)
        tables = set(inspector.get_table_names()) - {"alembic_version"}
        assert tables == set(SEED), "seed one row into every table that exists at 0007"
        columns = {t: [c["name"] for c in inspector.get_columns(t)] for t in sorted(tables)}
        with engine.begin() as conn:
            for statement in SEED.values():
                conn.execute(text(statement), {"body": b'{"email": "ann@acme.example"}'})
        before = _snapshot(engine, columns, at_head=False)
        assert all(len(rows) == 1 for rows in before.values())
        before_at_head = _snapshot(engine, columns, at_head=True)

        migrate.upgrade(url, keyring=TEST_KEYRING)
        assert _snapshot(engine, columns, at_head=True) == before_at_head

        migrate.downgrade(url, revision=BEFORE, keyring=TEST_KEYRING)
        assert _snapshot(engine, columns, at_head=False) == before

        migrate.upgrade(url, keyring=TEST_KEYRING)
        assert _snapshot(engine, columns, at_head=True) == before_at_head
    finally:
        engine.dispose()


@pytest.fixture
def sqlite_at_0007(tmp_path: Path) -> str:
    path = tmp_path / "old.sqlite3"
    migrate.upgrade(f"sqlite:///{path}", revision=BEFORE)
    return str(path)


def _version(url: str) -> str:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return str(conn.execute(text("SELECT version_num FROM alembic_version")).scalar())
    finally:
        engine.dispose()


def _dangling_member(path: str) -> None:
    """A campaign member whose campaign and customer do not exist (foreign keys off)."""
    raw = sqlite3.connect(path)
    try:
        raw.execute(
            "INSERT INTO campaign_members (campaign_id, customer_id, status, added_at)"
            f" VALUES (99, 98, 'targeted', {T})"
        )
        raw.commit()
    finally:
        raw.close()


def test_a_row_pointing_nowhere_rolls_the_whole_upgrade_back(sqlite_at_0007: str) -> None:
    url = f"sqlite:///{sqlite_at_0007}"
    _dangling_member(sqlite_at_0007)
    with pytest.raises(
        migrate.MigrationError, match=r"2 reference\(s\) .*campaign_members row 1 -> customers"
    ):
        migrate.upgrade(url, keyring=TEST_KEYRING)
    assert _version(url) == BEFORE
    engine = make_engine(url)
    try:
        columns = {c["name"] for c in inspect(engine).get_columns("marketing_campaigns")}
        assert "failure_reason" not in columns  # 0008 was rolled back with the rest
    finally:
        engine.dispose()


def test_the_cli_says_so_in_one_line(sqlite_at_0007: str, monkeypatch: pytest.MonkeyPatch) -> None:
    _dangling_member(sqlite_at_0007)
    settings = Settings(database_url=f"sqlite:///{sqlite_at_0007}")
    monkeypatch.setattr(crm_cli.main, "get_settings", lambda: settings)
    result = CliRunner().invoke(cli, ["db", "upgrade"])
    assert result.exit_code == 1
    assert result.output.startswith("Error: the migration would leave 2 reference(s) to rows")
    assert len(result.output.strip().splitlines()) == 1


def test_a_given_connection_is_migrated_and_gets_its_foreign_keys_back(
    sqlite_at_0007: str,
) -> None:
    url = f"sqlite:///{sqlite_at_0007}"
    engine = make_engine(url)
    try:
        with engine.begin() as conn:
            for table in ("customers", "marketing_campaigns", "campaign_members"):
                conn.execute(text(SEED[table]))
        with engine.connect() as conn:
            cfg = migrate.alembic_config(connection=conn, keyring=TEST_KEYRING)
            command.upgrade(cfg, "head")
            assert not conn.in_transaction()
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert conn.execute(text("SELECT count(*) FROM campaign_members")).scalar() == 1
            conn.rollback()
        assert _version(url) == ScriptDirectory.from_config(cfg).get_current_head()
    finally:
        engine.dispose()


def test_a_given_connection_inside_a_transaction_is_refused(sqlite_at_0007: str) -> None:
    url = f"sqlite:///{sqlite_at_0007}"
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))  # begins a transaction
            cfg = migrate.alembic_config(connection=conn, keyring=TEST_KEYRING)
            with pytest.raises(migrate.MigrationError, match="outside any transaction"):
                command.upgrade(cfg, "head")
            conn.rollback()
        assert _version(url) == BEFORE
    finally:
        engine.dispose()
