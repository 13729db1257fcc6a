"""crm sources and crm events, against the test database."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from sqlalchemy import Engine, select

from crm_cli import session as cli_session
from crm_cli.main import cli
from crm_core.config import Settings
from crm_core.db import make_session_factory
from crm_core.ingestion.models import EventStatus, InboxEvent, Source


@pytest.fixture
def crm(database_url: str, committed_db: Engine, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """Run ``crm ARGS…`` on the test database; returns the click result."""
    settings = Settings(database_url=database_url, broker_url="memory://")
    monkeypatch.setattr(cli_session, "get_settings", lambda: settings)
    runner = CliRunner()

    def run(*args: str, ok: bool = True):  # type: ignore[no-untyped-def]
        result = runner.invoke(cli, list(args))
        assert (result.exit_code == 0) is ok, result.output
        return result

    return run


def test_sources_add_prints_the_secret_alone_on_the_last_line(crm) -> None:  # type: ignore[no-untyped-def]
    secret = crm("sources", "add", "website").output.splitlines()[-1]
    assert secret.startswith("whsec_")
    assert "already exists" in crm("sources", "add", "website", ok=False).output
    rotated = crm("sources", "rotate", "website", "--grace-hours", "1").output.splitlines()[-1]
    assert rotated.startswith("whsec_")
    assert rotated != secret
    crm("sources", "disable", "website")
    assert "website\tdisabled" in crm("sources", "list").output
    assert "no source 'nope'" in crm("sources", "rotate", "nope", ok=False).output


def test_events_list_show_and_replay(crm, committed_db: Engine) -> None:  # type: ignore[no-untyped-def]
    with make_session_factory(committed_db).begin() as session:
        source = Source(name="shop")
        session.add(source)
        session.flush()
        failed = InboxEvent(
            source_id=source.id,
            kind="leads",
            webhook_id="m1",
            content_type="application/json",
            body=b'{"email": "a@example.com"}',
            status=EventStatus.FAILED,
            attempts=2,
            error="no handler for kind 'leads'",
        )
        session.add(failed)
    assert "failed" in crm("events", "list", "--status", "failed", "--source", "shop").output
    shown = json.loads(crm("events", "show", str(failed.id), "--body").output)
    assert shown["body"] == '{"email": "a@example.com"}'
    assert shown["error"] == "no handler for kind 'leads'"
    assert "1 event(s) queued" in crm("events", "replay", "--status", "failed").output
    with make_session_factory(committed_db)() as session:
        event = session.scalar(select(InboxEvent))
        assert (event.status, event.attempts) == (EventStatus.RECEIVED, 0)
    assert "is received" in crm("events", "replay", str(failed.id), ok=False).output
    assert "no event 999" in crm("events", "show", "999", ok=False).output
    assert "either an EVENT_ID or --status" in crm("events", "replay", ok=False).output
