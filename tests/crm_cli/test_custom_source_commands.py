"""crm sources add --provider custom --mapping FILE, set-mapping, and Typeform's --map."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import Engine

from crm_cli import session as cli_session
from crm_cli import sources as cli_sources
from crm_cli.main import cli
from crm_core.config import Settings
from crm_core.db import make_session_factory
from crm_core.ingestion import services
from crm_core.ingestion.models import Source
from tests.provider_requests import EXAMPLES

PUBLIC = "https://crm.example.com"
GITHUB_STYLE = str(EXAMPLES / "github-style.toml")
LEAD_FORM = str(EXAMPLES / "lead-form.toml")


@pytest.fixture
def crm(database_url: str, committed_db: Engine, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """Run ``crm ARGS…`` on the test database; returns the click result."""
    settings = Settings(database_url=database_url, broker_url="memory://", public_url=PUBLIC)
    monkeypatch.setattr(cli_session, "get_settings", lambda: settings)
    monkeypatch.setattr(cli_sources, "get_settings", lambda: settings)
    runner = CliRunner()

    def run(*args: str, ok: bool = True, stdin: str | None = None):  # type: ignore[no-untyped-def]
        result = runner.invoke(cli, list(args), input=stdin)
        assert (result.exit_code == 0) is ok, result.output
        return result

    return run


def _stored(engine: Engine, name: str) -> Source:
    with make_session_factory(engine)() as session:
        source = services.get_source(session, name=name)
        session.expunge(source)
        return source


def test_a_custom_source_stores_its_file_and_prints_the_url_last(  # type: ignore[no-untyped-def]
    crm, committed_db: Engine
) -> None:
    result = crm("sources", "add", "shop", "--provider", "custom", "--mapping", GITHUB_STYLE,
                 "--secret-stdin", stdin="s3cret\n")  # fmt: skip
    lines = result.output.splitlines()
    assert lines[-1] == f"{PUBLIC}/webhooks/shop"
    assert "X-Hub-Signature-256: sha256=<HMAC-SHA256, hex of {body}>" in result.output
    source = _stored(committed_db, "shop")
    assert source.provider == "custom"
    assert source.mapping is not None
    assert source.mapping["signature"]["header"] == "X-Hub-Signature-256"
    assert source.mapping["fields"]["lines"]["each"] == "/order/items"
    shown = crm("sources", "show", "shop").output
    assert shown.splitlines()[-1] == f"{PUBLIC}/webhooks/shop"
    assert "s3cret" not in shown
    assert "shop\tenabled\tdefault/min\tcustom" in crm("sources", "list").output


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ('kind = "leads"\n[signature]\nheader = "X"\nalgorithm = "md5"\n', "signature.algorithm"),
        ("kind = leads\n", "not a TOML file"),
        ('kind = "leads"\nfields = 3\n', "fields: Input should be a valid dictionary"),
        (Path(LEAD_FORM).read_text().replace('email = "/submission', 'emial = "/submission', 1),
         "fields: emial: not a field of leads"),
    ],
)  # fmt: skip
def test_a_bad_mapping_file_is_a_one_line_error_naming_the_key(  # type: ignore[no-untyped-def]
    crm, tmp_path: Path, text: str, named: str
) -> None:
    path = tmp_path / "sender.toml"
    path.write_text(text)
    result = crm("sources", "add", "web", "--provider", "custom", "--mapping", str(path),
                 "--secret", "s", ok=False)  # fmt: skip
    [line] = result.output.strip().splitlines()
    assert line.startswith(f"Error: {path}: ")
    assert named in line
    assert "Traceback" not in result.output


def test_a_custom_source_needs_a_readable_file_and_a_secret(crm, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    for args, said in (
        ([], "--mapping: a custom source needs a mapping file (--mapping FILE.toml)"),
        (["--mapping", str(tmp_path / "missing.toml")], "missing.toml: No such file"),
        (["--mapping", LEAD_FORM, "--map", "company=x"], "not both"),
    ):
        result = crm("sources", "add", "web", "--provider", "custom", "--secret", "s", *args,
                     ok=False)  # fmt: skip
        [line] = result.output.strip().splitlines()
        assert said in line
    missing = crm("sources", "add", "web", "--provider", "custom", "--mapping", LEAD_FORM,
                  ok=False).output  # fmt: skip
    assert "--secret: Custom JSON sender issues the signing secret: give it" in missing
    shopify = crm("sources", "add", "shop", "--provider", "shopify", "--secret", "s",
                  "--mapping", LEAD_FORM, ok=False).output  # fmt: skip
    assert "--mapping: Shopify sources take no mapping" in shopify


def test_set_mapping_replaces_a_custom_source_s_file(
    crm, committed_db: Engine, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    crm("sources", "add", "landing", "--provider", "custom", "--mapping", LEAD_FORM,
        "--secret", "s")  # fmt: skip
    fixed = tmp_path / "fixed.toml"
    fixed.write_text(Path(LEAD_FORM).read_text().replace('"landing-page"', '"ads"'))
    result = crm("sources", "set-mapping", "landing", str(fixed))
    assert "crm events list --source landing --status invalid" in result.output
    mapping = _stored(committed_db, "landing").mapping
    assert mapping is not None
    assert mapping["constants"]["utm_source"] == "ads"
    bad = tmp_path / "bad.toml"
    bad.write_text('kind = "leads"\n')
    [line] = crm("sources", "set-mapping", "landing", str(bad), ok=False).output.splitlines()
    assert "signature: Field required" in line
    assert (
        "no source 'nobody'" in crm("sources", "set-mapping", "nobody", LEAD_FORM, ok=False).output
    )


def test_typeform_takes_refs_with_map(crm, committed_db: Engine) -> None:  # type: ignore[no-untyped-def]
    url = crm("sources", "add", "enquiries", "--provider", "typeform", "--secret", "s",
              "--map", "company=shop_name", "--map", "utm_campaign=campaign").output  # fmt: skip
    assert url.splitlines()[-1] == f"{PUBLIC}/webhooks/enquiries"
    assert _stored(committed_db, "enquiries").mapping == {
        "answers": {"company": "shop_name", "utm_campaign": "campaign"}
    }
    crm("sources", "set-mapping", "enquiries", "--map", "job_title=role")
    assert _stored(committed_db, "enquiries").mapping == {"answers": {"job_title": "role"}}
    crm("sources", "set-mapping", "enquiries")
    assert _stored(committed_db, "enquiries").mapping is None
    bad = crm("sources", "add", "other", "--provider", "typeform", "--secret", "s",
              "--map", "compny=shop_name", ok=False).output  # fmt: skip
    [line] = bad.strip().splitlines()
    assert line.startswith("Error: --map: compny: not a lead field; one of email, phone,")
