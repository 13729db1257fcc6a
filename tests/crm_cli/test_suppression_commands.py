"""crm suppressions list|show|remove: see a suppression, and undo it with a recorded reason."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from crm_cli.main import cli
from crm_core import models as m
from crm_core.bounces.models import SuppressionReason
from crm_core.bounces.suppression import suppress
from crm_core.config import get_settings
from crm_core.db import make_session_factory


@pytest.fixture
def runner(database_url: str, committed_db: Engine, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("CRM_DATABASE_URL", database_url)
    monkeypatch.setenv("CRM_SECRET_KEY", "cli test secret key")
    get_settings.cache_clear()
    with make_session_factory(committed_db).begin() as session:
        suppress(
            session,
            email_normalized="gone@client.example",
            reason=SuppressionReason.BOUNCED,
            detail="5.1.1 user unknown",
        )
    yield CliRunner()
    get_settings.cache_clear()


def test_list_and_show(runner: CliRunner, committed_db: Engine) -> None:
    with make_session_factory(committed_db).begin() as session:
        suppress(
            session,
            email_normalized="complainer@client.example",
            reason=SuppressionReason.COMPLAINED,
            provider="postmark",
        )
    listed = runner.invoke(cli, ["suppressions", "list"])
    assert listed.exit_code == 0, listed.output
    gone, complainer = (line.split("\t") for line in listed.output.splitlines())
    assert (gone[:2], gone[3:]) == (["gone@client.example", "bounced"], ["-", "5.1.1 user unknown"])
    assert (complainer[:2], complainer[3:]) == (
        ["complainer@client.example", "complained"],
        ["postmark"],
    )
    shown = runner.invoke(cli, ["suppressions", "show", "Gone@Client.example"])
    assert shown.exit_code == 0, shown.output
    assert json.loads(shown.output)["reason"] == "bounced"
    missing = runner.invoke(cli, ["suppressions", "show", "x@y.example"])
    assert (missing.exit_code, missing.output.strip()) == (
        1,
        "Error: x@y.example is not suppressed",
    )


def test_remove_needs_a_reason_and_records_it(runner: CliRunner, committed_db: Engine) -> None:
    refused = runner.invoke(cli, ["suppressions", "remove", "gone@client.example"])
    assert refused.exit_code == 2
    assert "--reason" in refused.output
    blank = runner.invoke(cli, ["suppressions", "remove", "gone@client.example", "--reason", " "])
    assert blank.exit_code == 1
    assert blank.output.strip() == "Error: reason: removing a suppression needs a reason"
    removed = runner.invoke(
        cli, ["suppressions", "remove", "gone@client.example", "--reason", "mailbox fixed"]
    )
    assert removed.exit_code == 0, removed.output
    with Session(committed_db) as session:
        assert session.scalars(select(m.Suppression)).all() == []
        note = session.scalars(
            select(m.Activity).where(m.Activity.type == "suppression_removed")
        ).one()
        assert note.details["reason"] == "mailbox fixed"
        assert note.details["removed"]["detail"] == "5.1.1 user unknown"
    again = runner.invoke(
        cli, ["suppressions", "remove", "gone@client.example", "--reason", "again"]
    )
    assert again.exit_code == 1
