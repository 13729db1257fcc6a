"""Commands that change something leave an audit entry as ``operator:<login>``, without secrets."""

from __future__ import annotations

import getpass
from collections.abc import Iterator

import pytest
from click.testing import CliRunner
from sqlalchemy import Engine, select

from crm_cli.main import cli
from crm_core import models as m
from crm_core.bounces.models import SuppressionReason
from crm_core.bounces.suppression import suppress
from crm_core.config import get_settings
from crm_core.db import make_session_factory


@pytest.fixture
def runner(
    database_url: str, committed_db: Engine, monkeypatch: pytest.MonkeyPatch
) -> Iterator[CliRunner]:
    monkeypatch.setenv("CRM_DATABASE_URL", database_url)
    monkeypatch.setenv("CRM_SECRET_KEY", "cli test secret key")
    get_settings.cache_clear()
    yield CliRunner()
    get_settings.cache_clear()


def _invoke(runner: CliRunner, *args: str) -> str:
    result = runner.invoke(cli, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def test_admin_commands_are_audited_as_the_operator(
    runner: CliRunner, committed_db: Engine
) -> None:
    secret = _invoke(runner, "sources", "add", "shop").strip().splitlines()[-1]
    _invoke(runner, "sources", "disable", "shop")
    _invoke(runner, "sources", "rotate", "shop", "--grace-hours", "1")
    hook_secret = _invoke(
        runner, "subscriptions", "add", "https://hooks.example/x", "--events", "*"
    ).splitlines()[-1]
    with make_session_factory(committed_db).begin() as session:
        subscription_id = session.scalar(select(m.Subscription.id))
        suppress(session, email_normalized="gone@example.com", reason=SuppressionReason.BOUNCED)
    _invoke(runner, "subscriptions", "remove", str(subscription_id))
    _invoke(runner, "suppressions", "remove", "gone@example.com", "--reason", "fixed")
    with make_session_factory(committed_db)() as session:
        entries = list(session.scalars(select(m.AuditEntry).order_by(m.AuditEntry.id)))
    assert [(e.entity, e.action) for e in entries] == [
        ("source", "create"),
        ("source", "update"),
        ("source", "update"),
        ("subscription", "create"),
        ("subscription", "delete"),
        ("suppression", "delete"),
    ]
    assert {e.actor for e in entries} == {f"operator:{getpass.getuser()}"}
    logged = str([e.changes for e in entries])
    assert secret not in logged
    assert hook_secret not in logged
