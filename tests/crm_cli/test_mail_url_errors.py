"""A mail URL that would send an SMTP password in clear is one line on the CLI."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from crm_cli import cases as cases_module
from crm_cli.main import cli
from crm_core.config import Settings


def test_an_unencrypted_smtp_login_is_refused_in_one_line(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = Settings(database_url=database_url, mail_url="smtp://crm:hunter2@127.0.0.1:2525")
    monkeypatch.setattr(cases_module, "get_settings", lambda: settings)
    result = CliRunner().invoke(cli, ["cases", "reply", "1", "--body", "Hello"])
    assert result.exit_code == 1
    assert result.output.startswith("Error: an smtp:// URL with a user would send the password")
    assert "?insecure=1" in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert "hunter2" not in result.output
