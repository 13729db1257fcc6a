"""crm sources add/show/rotate for a web form's source, against the test database."""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from sqlalchemy import Engine

from crm_cli import session as cli_session
from crm_cli import sources as cli_sources
from crm_cli.main import cli
from crm_core.config import Settings
from crm_core.db import make_session_factory
from crm_core.ingestion import services

PUBLIC = "https://crm.example.com"


@pytest.fixture
def crm(database_url: str, committed_db: Engine, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    settings = Settings(database_url=database_url, broker_url="memory://", public_url=PUBLIC)
    monkeypatch.setattr(cli_session, "get_settings", lambda: settings)
    monkeypatch.setattr(cli_sources, "get_settings", lambda: settings)
    runner = CliRunner()

    def run(*args: str, ok: bool = True):  # type: ignore[no-untyped-def]
        result = runner.invoke(cli, list(args))
        assert (result.exit_code == 0) is ok, result.output
        return result

    return run


def test_a_form_source_prints_the_form_s_action_last(crm, committed_db: Engine) -> None:  # type: ignore[no-untyped-def]
    result = crm(
        "sources", "add", "website", "--provider", "form",
        "--origin", "https://www.example.com", "--origin", "https://Example.com/",
        "--redirect", "https://www.example.com/thanks",
    )  # fmt: skip
    lines = result.output.splitlines()
    assert lines[-1] == f"{PUBLIC}/forms/website"
    assert "warning" not in result.output
    assert "posts accepted from: https://www.example.com, https://example.com" in result.output
    assert f'<form action="{PUBLIC}/forms/website" method="post">' in result.output
    with make_session_factory(committed_db)() as session:
        source = services.get_source(session, name="website")
        assert source.allowed_origins == ["https://www.example.com", "https://example.com"]
        assert source.redirect_url == "https://www.example.com/thanks"
        assert services.active_secrets(session, source_id=source.id) == []
    shown = crm("sources", "show", "website").output
    assert shown.splitlines()[-1] == f"{PUBLIC}/forms/website"
    assert 'name="consent"' in shown
    assert "https://www.example.com/thanks" in shown


def test_without_origins_a_warning_comes_before_the_url(crm) -> None:  # type: ignore[no-untyped-def]
    lines = crm("sources", "add", "any", "--provider", "form").output.splitlines()
    assert lines[-1] == f"{PUBLIC}/forms/any"
    warnings = [n for n, line in enumerate(lines) if line.startswith("warning:")]
    assert warnings
    assert warnings[0] < len(lines) - 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--origin", "https://example.com/contact"), "--origin:"),
        (("--origin", "example.com"), "--origin:"),
        (("--redirect", "/thanks"), "--redirect:"),
        (("--secret", "x"), "--secret:"),
    ],
)
def test_bad_form_settings_are_one_line_errors(crm, args: tuple[str, ...], message: str) -> None:  # type: ignore[no-untyped-def]
    output = crm("sources", "add", "bad", "--provider", "form", *args, ok=False).output
    assert message in output
    assert "Traceback" not in output


def test_origins_belong_to_forms_only(crm) -> None:  # type: ignore[no-untyped-def]
    output = crm(
        "sources", "add", "shop", "--provider", "shopify", "--secret", "s",
        "--origin", "https://example.com", ok=False,
    ).output  # fmt: skip
    assert "only a web form" in output


def test_a_form_has_no_secret_to_rotate(crm) -> None:  # type: ignore[no-untyped-def]
    crm("sources", "add", "website", "--provider", "form")
    output = crm("sources", "rotate", "website", ok=False).output
    assert "no secret" in output
