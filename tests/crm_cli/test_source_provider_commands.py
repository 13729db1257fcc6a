"""crm sources add/show/rotate with --provider, against the test database."""

from __future__ import annotations

import base64

import pytest
from click.testing import CliRunner
from sqlalchemy import Engine, select

from crm_cli import session as cli_session
from crm_cli import sources as cli_sources
from crm_cli.main import cli
from crm_core.config import Settings
from crm_core.db import make_session_factory
from crm_core.ingestion import services
from crm_core.people.models import AuditEntry
from crm_core.providers import PROVIDERS, ProviderRequest
from tests.mail_provider_requests import SendGridSigner

PUBLIC = "https://crm.example.com"


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


def _lines(result) -> list[str]:  # type: ignore[no-untyped-def]
    return result.output.splitlines()


def test_standard_stays_the_default_and_its_last_line_the_secret(crm) -> None:  # type: ignore[no-untyped-def]
    secret = _lines(crm("sources", "add", "website"))[-1]
    assert secret.startswith("whsec_")
    assert "website\tenabled\tdefault/min\tstandard" in crm("sources", "list").output
    shown = crm("sources", "show", "website").output
    assert f"{PUBLIC}/webhooks/website/<kind>" in shown
    assert secret not in shown


@pytest.mark.parametrize("provider", ["shopify", "woocommerce", "stripe", "zendesk", "typeform"])
def test_a_provider_issuing_its_secret_takes_it_and_prints_the_url_last(  # type: ignore[no-untyped-def]
    crm, committed_db: Engine, provider: str
) -> None:
    result = crm("sources", "add", "shop", "--provider", provider, "--secret", "s3cret value")
    assert _lines(result)[-1] == f"{PUBLIC}/webhooks/shop"
    with make_session_factory(committed_db)() as session:
        source = services.get_source(session, name="shop")
        assert source.provider == provider
        assert services.active_secrets(session, source_id=source.id) == ["s3cret value"]
    shown = crm("sources", "show", "shop").output
    assert _lines(crm("sources", "show", "shop"))[-1] == f"{PUBLIC}/webhooks/shop"
    assert "s3cret" not in shown
    assert PROVIDERS[provider].label in shown


def test_the_secret_can_come_from_stdin_and_is_required(crm, committed_db: Engine) -> None:  # type: ignore[no-untyped-def]
    crm("sources", "add", "pay", "--provider", "stripe", "--secret-stdin", stdin="whsec_abc\n")
    with make_session_factory(committed_db)() as session:
        source = services.get_source(session, name="pay")
        assert services.active_secrets(session, source_id=source.id) == ["whsec_abc"]
    missing = crm("sources", "add", "pay2", "--provider", "stripe", ok=False).output
    assert "--secret: Stripe issues the signing secret" in missing
    both = crm(
        "sources", "add", "p3", "--provider", "stripe", "--secret", "a", "--secret-stdin",
        ok=False, stdin="b\n",
    ).output  # fmt: skip
    assert "not both" in both
    given = crm("sources", "add", "web", "--secret", "mine", ok=False).output
    assert "generated secret" in given
    assert "is not one of" in crm("sources", "add", "x", "--provider", "nope", ok=False).output


def test_freshdesk_gets_generated_basic_credentials_in_its_url(crm, committed_db: Engine) -> None:  # type: ignore[no-untyped-def]
    url = _lines(crm("sources", "add", "desk", "--provider", "freshdesk"))[-1]
    scheme, rest = url.split("://")
    credentials, path = rest.split("@")
    assert (scheme, path) == ("https", "crm.example.com/webhooks/desk")
    # Those credentials, sent as a client sends a URL's, verify against the stored ones.
    with make_session_factory(committed_db)() as session:
        source = services.get_source(session, name="desk")
        stored = services.active_secrets(session, source_id=source.id)
    token = base64.b64encode(credentials.encode()).decode()
    request = ProviderRequest({"Authorization": f"Basic {token}"}, b"{}", "application/json")
    PROVIDERS["freshdesk"].verify(request, secrets=stored, now=0, tolerance=300)
    assert _lines(crm("sources", "show", "desk"))[-1] == url


def test_rotating_a_provider_source(crm) -> None:  # type: ignore[no-untyped-def]
    crm("sources", "add", "shop", "--provider", "shopify", "--secret", "old")
    refused = crm("sources", "rotate", "shop", ok=False).output
    assert "Shopify issues the signing secret" in refused
    rotated = crm("sources", "rotate", "shop", "--secret", "new", "--grace-hours", "1")
    assert _lines(rotated)[-1] == f"{PUBLIC}/webhooks/shop"
    first = _lines(crm("sources", "add", "desk", "--provider", "freshdesk"))[-1]
    again = _lines(crm("sources", "rotate", "desk"))[-1]
    assert again != first
    assert again.endswith("@crm.example.com/webhooks/desk")


def test_a_provider_source_needs_the_public_url(  # type: ignore[no-untyped-def]
    crm, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = Settings(database_url=database_url, broker_url="memory://")
    monkeypatch.setattr(cli_sources, "get_settings", lambda: settings)
    result = crm("sources", "add", "shop", "--provider", "shopify", "--secret", "s", ok=False)
    assert "CRM_PUBLIC_URL" in result.output
    assert "no sources" in crm("sources", "list").output


# --- e-mail providers ---------------------------------------------------------------------


def _last(result) -> str:  # type: ignore[no-untyped-def]
    return str(result.output.splitlines()[-1])


def test_mailgun_takes_its_signing_key_and_prints_the_url_last(crm) -> None:  # type: ignore[no-untyped-def]
    result = crm("sources", "add", "mg", "--provider", "mailgun", "--secret", "key-abc")
    assert _last(result) == f"{PUBLIC}/webhooks/mg"
    assert "forward(" in result.output
    assert "key-abc" not in crm("sources", "show", "mg").output
    assert (
        "Mailgun issues" in crm("sources", "add", "mg2", "--provider", "mailgun", ok=False).output
    )


@pytest.mark.parametrize("provider", ["sendgrid", "postmark"])
def test_generated_basic_credentials_are_in_the_url_printed_last(  # type: ignore[no-untyped-def]
    crm, committed_db: Engine, provider: str
) -> None:
    url = _last(crm("sources", "add", "mail", "--provider", provider))
    credentials, _, path = url.removeprefix("https://").partition("@")
    assert path == "crm.example.com/webhooks/mail"
    assert credentials.startswith(f"{provider}-")
    with make_session_factory(committed_db)() as session:
        stored = services.active_secrets(
            session, source_id=services.get_source(session, name="mail").id
        )
    header = {"Authorization": "Basic " + base64.b64encode(credentials.encode()).decode()}
    request = ProviderRequest(header, b"--b--", "multipart/form-data")
    if provider == "postmark":
        request = ProviderRequest(header, b"{}", "application/json")
    PROVIDERS[provider].verify(request, secrets=stored, now=0, tolerance=300)
    assert _last(crm("sources", "show", "mail")) == url


def test_a_sendgrid_key_is_given_at_creation_or_later(crm, committed_db: Engine) -> None:  # type: ignore[no-untyped-def]
    key = SendGridSigner().public_key
    crm("sources", "add", "sg", "--provider", "sendgrid", "--public-key", key)
    crm("sources", "add", "sg2", "--provider", "sendgrid")
    assert "verification key: none" in crm("sources", "show", "sg2").output
    other = SendGridSigner().public_key
    assert "new key" in crm("sources", "set-key", "sg2", other).output
    assert "verification key: set" in crm("sources", "show", "sg2").output
    with make_session_factory(committed_db)() as session:
        assert services.get_source(session, name="sg").public_key == key
        sg2 = services.get_source(session, name="sg2")
        assert sg2.public_key == other
        entries = session.scalars(
            select(AuditEntry)
            .where(AuditEntry.entity == "source", AuditEntry.entity_id == sg2.id)
            .order_by(AuditEntry.id)
        ).all()
        # The key is no secret: the audit log shows which one was set.
        assert entries[-1].action == "update"
        assert entries[-1].changes["public_key"] == {"before": None, "after": other}
    wrong = crm("sources", "set-key", "sg2", "not a key", ok=False).output
    assert "not a SendGrid verification key" in wrong
    assert "PUBLIC_KEY:" in wrong
    assert "--public_key" not in wrong
    assert len(wrong.strip().splitlines()) == 1
    refused = crm(
        "sources", "add", "pm", "--provider", "postmark", "--public-key", key, ok=False
    ).output
    assert "--public-key: Postmark sources take no public key" in refused
    assert "no source" in crm("sources", "set-key", "nope", key, ok=False).output.lower()
