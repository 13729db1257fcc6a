"""crm status: the database, the workers seen, and what is waiting or went wrong."""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from crm_cli import main as main_module
from crm_cli.main import cli
from crm_core.config import Settings
from crm_core.db import make_session_factory
from crm_core.ingestion.models import InboxEvent, Source
from crm_core.ops.services import backlog, record_heartbeat
from tests.factories import ContactFactory


def test_status_shows_workers_and_the_backlog(
    database_url: str, committed_db: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = Settings(database_url=database_url, broker_url="memory://")
    monkeypatch.setattr(main_module, "get_settings", lambda: settings)
    runner = CliRunner()
    empty = runner.invoke(cli, ["status"])
    assert empty.exit_code == 0, empty.output
    assert "no worker seen in the last 90s" in empty.output
    assert "inbox events: none" in empty.output

    with make_session_factory(committed_db).begin() as session:
        record_heartbeat(session, hostname="celery@box", pid=42)
        source = Source(name="shop")
        session.add(source)
        session.flush()
        session.add_all(
            InboxEvent(
                source_id=source.id,
                kind="leads",
                webhook_id=f"msg_{n}",
                content_type="application/json",
                body=b"{}",
                status=status,
            )
            for n, status in enumerate(("received", "received", "dead"))
        )
    shown = runner.invoke(cli, ["status"])
    assert shown.exit_code == 0, shown.output
    assert "celery@box\tpid 42" in shown.output
    assert "inbox events: 1 dead, 2 received" in shown.output
    assert "notifications: none" in shown.output


def test_backlog_counts_every_table_by_status(session: Session) -> None:
    ContactFactory()
    counts = backlog(session)
    assert set(counts) == {"inbox events", "follow-ups", "notifications", "campaign sends"}
    assert all(by_status == {} for by_status in counts.values())
