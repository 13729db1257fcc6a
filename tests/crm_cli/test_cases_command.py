"""crm cases reply: a real SMTP server receives the threaded reply; errors are one line."""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from sqlalchemy import Engine

from crm_cli import cases as cases_module
from crm_cli.main import cli
from crm_core.config import Settings
from crm_core.customers.services import create_customer
from crm_core.db import make_session_factory
from crm_core.mail import CaseTokens
from crm_core.models import Contact, SupportCase
from tests.smtp_server import SmtpTestServer, smtp_server

__all__ = ["smtp_server"]


def test_reply_sends_and_reports_and_refuses_unknown_cases(
    database_url: str,
    committed_db: Engine,
    smtp_server: SmtpTestServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = Settings(
        database_url=database_url, mail_url=smtp_server.url(), secret_key="cli test secret key"
    )
    monkeypatch.setattr(cases_module, "get_settings", lambda: settings)
    with make_session_factory(committed_db).begin() as session:
        contact = Contact(email="ann@client.example", email_normalized="ann@client.example")
        customer = create_customer(session, name="Client", primary_contact=contact)
        case = SupportCase(customer_id=customer.id, contact_id=contact.id, subject="Slow")
        session.add(case)
        session.flush()
        case_id = case.id
    runner = CliRunner()
    sent = runner.invoke(cli, ["cases", "reply", str(case_id), "--body", "Looking into it."])
    assert sent.exit_code == 0, sent.output
    assert sent.output.startswith("sent <")
    [mail] = smtp_server.handler.received
    token = CaseTokens.from_secret("cli test secret key").token(case_id)
    assert mail.message["Subject"] == f"Re: Slow {token}"
    missing = runner.invoke(cli, ["cases", "reply", "999999", "--body", "x"])
    assert missing.exit_code == 1
    assert missing.output.strip() == "Error: no case 999999"
