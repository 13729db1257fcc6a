"""crm subscriptions and crm followups against the test database; errors are one line."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import Engine

from crm_cli import followups as followups_module
from crm_cli import session as cli_session
from crm_cli.main import cli
from crm_core.config import Settings
from crm_core.customers.services import create_customer
from crm_core.db import make_session_factory, utcnow
from crm_core.followups.rules import parse_rules
from crm_core.followups.services import evaluate
from crm_core.models import Contact


@pytest.fixture
def settings(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Settings:
    settings = Settings(database_url=database_url, broker_url="memory://")
    monkeypatch.setattr(cli_session, "get_settings", lambda: settings)
    monkeypatch.setattr(followups_module, "get_settings", lambda: settings)
    return settings


def crm(*args: str, ok: bool = True) -> str:
    result = CliRunner().invoke(cli, list(args))
    assert (result.exit_code == 0) is ok, result.output
    return result.output


def test_subscriptions_add_list_remove(settings: Settings, committed_db: Engine) -> None:
    out = crm("subscriptions", "add", "https://hooks.example/crm", "--events", "case.escalated")
    secret = out.splitlines()[-1]
    assert secret.startswith("whsec_")
    ident = out.split()[1]
    assert f"subscription {ident} sends case.escalated to https://hooks.example/crm" in out
    listed = crm("subscriptions", "list")
    assert f"{ident}\thttps://hooks.example/crm\tcase.escalated\tenabled" in listed
    assert secret not in listed
    assert crm("subscriptions", "remove", ident) == f"subscription {ident} removed\n"
    assert crm("subscriptions", "list") == "no subscriptions\n"
    assert crm("subscriptions", "remove", ident, ok=False) == f"Error: no subscription {ident}\n"


@pytest.mark.parametrize(
    ("url", "events", "message"),
    [
        ("ftp://x.example/", "case.escalated", "url: must be an http:// or https:// URL"),
        ("https://x.example/", "case.exploded", "events: unknown: case.exploded"),
        ("https://x.example/", "deal.won,deal.tied", "events: unknown: deal.tied; choose from"),
    ],
)
def test_bad_subscriptions_are_one_line(
    settings: Settings, committed_db: Engine, url: str, events: str, message: str
) -> None:
    out = crm("subscriptions", "add", url, "--events", events, ok=False)
    assert out.startswith("Error: ")
    assert message in out
    assert out.count("\n") == 1


def test_subscriptions_choose_among_every_event_type(
    settings: Settings, committed_db: Engine
) -> None:
    out = crm(
        "subscriptions", "add", "https://hooks.example/sales", "--events", "order.placed,deal.won"
    )
    ident = out.split()[1]
    assert f"{ident}\thttps://hooks.example/sales\torder.placed,deal.won\tenabled" in crm(
        "subscriptions", "list"
    )
    refused = crm("subscriptions", "add", "https://x.example/", "--events", "deal.tied", ok=False)
    for known in ("lead.created", "contact.updated", "case.opened", "campaign.finished", "*"):
        assert known in refused
    assert "case.opened" in crm("subscriptions", "add", "--help")


def test_followups_list_and_done(settings: Settings, committed_db: Engine) -> None:
    assert crm("followups", "list") == "no open follow-ups\n"
    with make_session_factory(committed_db).begin() as session:
        contact = Contact(
            email="ann@client.example",
            email_normalized="ann@client.example",
            full_name="Ann Lee",
            created_at=utcnow() - dt.timedelta(hours=3),
        )
        create_customer(session, name="Client", primary_contact=contact)
        rules = parse_rules('[[rule]]\nname = "lead"\nkind = "lead_no_outbound"\nafter = "1h"')
        [fired] = evaluate(session, rules, sender="crm@acme.test")
    listed = crm("followups", "list")
    assert listed.startswith(f"{fired.task_id}\t")
    assert "\tlead\tFollow up with Ann Lee: no one wrote within 1h" in listed
    assert crm("followups", "done", str(fired.task_id)) == f"follow-up {fired.task_id}: done\n"
    assert crm("followups", "list") == "no open follow-ups\n"
    assert f"{fired.task_id}\t" in crm("followups", "list", "--status", "done")
    assert crm("followups", "done", "424242", ok=False) == "Error: no follow-up 424242\n"


def test_followups_rules_checks_the_file(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert "lead-no-outbound\tlead_no_outbound\tafter 2 days, 0:00:00" in crm("followups", "rules")
    bad = tmp_path / "rules.toml"
    bad.write_text('[[rule]]\nname = "x"\nkind = "opportunity_idle"\nafter = "soon"\n')
    monkeypatch.setattr(settings, "followup_rules", str(bad))
    out = crm("followups", "rules", ok=False)
    assert (
        out
        == f"Error: {bad}: rule 'x', field after: must be a duration such as '30s', '48h' or '7d'\n"
    )
