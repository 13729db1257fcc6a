"""crm campaigns, against the test database."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import Engine

from crm_cli import session as cli_session
from crm_cli.main import cli
from crm_core.config import Settings


@pytest.fixture
def crm(database_url: str, committed_db: Engine, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """Run ``crm ARGS…`` on the test database; returns the click result."""
    settings = Settings(database_url=database_url, broker_url="memory://")
    monkeypatch.setattr(cli_session, "get_settings", lambda: settings)
    runner = CliRunner()

    def run(*args: str, ok: bool = True) -> Result:
        result = runner.invoke(cli, list(args))
        assert (result.exit_code == 0) is ok, result.output
        return result

    return run


def test_campaign_lifecycle_from_the_command_line(crm, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    body = tmp_path / "body.txt"
    body.write_text("Hi {{ contact.first_name }}", encoding="utf-8")
    created = crm(
        "campaigns", "create", "--name", "Spring", "--code", "spring",
        "--subject", "Hello", "--text-file", str(body),
        "--segment", '{"all": [{"field": "country", "op": "eq", "value": "DE"}]}',
    ).output  # fmt: skip
    campaign_id = created.split()[1]
    assert "draft" in crm("campaigns", "show", campaign_id).output
    assert "spring" in crm("campaigns", "list").output
    crm("campaigns", "schedule", campaign_id, "--at", "2030-01-01T09:00:00+00:00")
    recurring = crm("campaigns", "schedule", campaign_id, "--cron", "0 9 * * *").output
    assert "then on every match of '0 9 * * *' (UTC)" in recurring
    assert "cron\t0 9 * * * (UTC; run 1)" in crm("campaigns", "show", campaign_id).output
    crm("campaigns", "pause", campaign_id)
    assert (
        "cannot send a campaign that is paused"
        in crm("campaigns", "send", campaign_id, ok=False).output
    )
    crm("campaigns", "resume", campaign_id)
    assert "campaign due now" in crm("campaigns", "send", campaign_id).output
    crm("campaigns", "cancel", campaign_id)
    shown = crm("campaigns", "show", campaign_id).output
    assert "cancelled" in shown
    assert "targeted=0" in shown
    assert "complained=0 reported_bounced=0 reported_complained=0" in shown


def test_bad_input_is_one_line(crm, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    body = tmp_path / "body.txt"
    body.write_text("x", encoding="utf-8")
    base = ("campaigns", "create", "--name", "A", "--code", "a", "--text-file", str(body))
    bad_segment = crm(*base, "--subject", "s", "--segment", "{nope", ok=False).output
    assert "not JSON" in bad_segment
    bad_rule = crm(
        *base, "--subject", "s", "--segment", '{"all": [{"field": "zz", "op": "eq"}]}', ok=False
    ).output
    assert "segment.all.0.field" in bad_rule
    assert "Traceback" not in bad_rule
    assert "no campaign 424242" in crm("campaigns", "show", "424242", ok=False).output
    naive = crm("campaigns", "schedule", "1", "--at", "2030-01-01T09:00", ok=False).output
    assert "time zone" in naive
    neither = crm("campaigns", "schedule", "1", ok=False).output
    assert "give --at, --cron or both" in neither
    bad_cron = crm("campaigns", "schedule", "1", "--cron", "61 * * * *", ok=False).output
    assert "cron: must be a five-field cron expression" in bad_cron
    far = ("--subject", "s", "--send-at", "0001-01-01T00:00:00+01:00")
    out_of_range = crm(*base, *far, ok=False).output
    assert "send_at: must be between 1900-01-01 and 9000-01-01 (UTC)" in out_of_range
    assert "Traceback" not in out_of_range


def test_a_campaign_a_lead_created_is_written_with_create_before_it_can_be_sent(  # type: ignore[no-untyped-def]
    crm, committed_db: Engine, tmp_path: Path
) -> None:
    from sqlalchemy.orm import Session

    from crm_core.leads.attribution import campaigns_for_codes

    with Session(committed_db) as session:
        draft_id = str(campaigns_for_codes(session, codes=["ads-2026"])["ads-2026"].id)
        session.commit()
    refused = crm("campaigns", "send", draft_id, ok=False).output
    assert "subject: the campaign has no subject yet" in refused
    assert "Traceback" not in refused
    body = tmp_path / "body.txt"
    body.write_text("Hi", encoding="utf-8")
    created = crm(
        "campaigns", "create", "--name", "Ads", "--code", "ads-2026",
        "--subject", "Hello", "--text-file", str(body),
    ).output  # fmt: skip
    assert created.split()[1] == draft_id
    assert "campaign due now" in crm("campaigns", "send", draft_id).output
