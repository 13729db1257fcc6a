"""Replies from a case reach a real SMTP server threaded, tokened and on record."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from crm_core import models as m
from crm_core.base.touched import Touched
from crm_core.customers.services import create_customer
from crm_core.db import make_session_factory
from crm_core.errors import InvalidInput
from crm_core.mail import CaseTokens, parse_rfc822
from crm_core.mail_transport.backends import backend_from_url
from crm_core.notifications.services import add_subscription
from crm_core.people.permissions import Actor, PermissionDenied
from crm_core.support.inbound_mail import MailContext, receive_email
from crm_core.support.replies import CaseNotFound, send_case_reply
from crm_core.support.sla import SlaPolicy
from tests.smtp_server import SmtpTestServer, smtp_server

__all__ = ["smtp_server"]

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "emails"
SENDER = "Support <support@acme.test>"
TOKENS = CaseTokens.from_secret("test secret key")
OPERATOR = Actor.operator("test")


def _resolve(session, email: str, name: str | None) -> tuple[m.Contact, Touched]:
    found = session.scalars(select(m.Contact).where(m.Contact.email_normalized == email)).first()
    if found is None:
        found = m.Contact(email=email, email_normalized=email, full_name=name)
        create_customer(session, name=name or email, primary_contact=found)
    return found, Touched()


def _open_case_by_mail(engine: Engine) -> int:
    """The fixture request to support@ opens a case, as the pipeline would; a subscriber
    hears of every change."""
    context = MailContext(
        source_id=None,
        event_id=None,
        support_addresses={"support@acme.test"},
        sla=SlaPolicy(),
        resolve_contact=_resolve,
        find_contact=lambda s, e: None,
        case_tokens=TOKENS,
    )
    parsed = parse_rfc822((FIXTURES / "02_multipart_alternative.eml").read_bytes())
    with make_session_factory(engine).begin() as session:
        add_subscription(session, url="https://hooks.example/cases", events=["*"])
        outcome = receive_email(session, parsed=parsed, context=context)
        [case_id] = [i for t, i in outcome.touched.items() if t == "support_case"]
    return case_id


def test_a_reply_is_threaded_tokened_recorded_and_stops_the_sla_timer(
    committed_db: Engine, smtp_server: SmtpTestServer
) -> None:
    case_id = _open_case_by_mail(committed_db)
    sessions = make_session_factory(committed_db)
    outcome = send_case_reply(
        sessions,
        backend_from_url(smtp_server.url()),
        actor=OPERATOR,
        case_id=case_id,
        body="We are on it.",
        html=None,
        sender=SENDER,
        case_tokens=TOKENS,
    )
    assert outcome.delivery == "sent"
    [mail] = smtp_server.handler.received
    message = mail.message
    with sessions() as session:
        # The first reply opens the new case: one case.status_changed, new → open.
        [changed] = session.scalars(
            select(m.NotificationDelivery.payload).where(
                m.NotificationDelivery.event_type == "case.status_changed"
            )
        )
    assert (changed["data"]["previous_status"], changed["data"]["status"]) == ("new", "open")
    assert mail.rcpt_tos == ["bob@jones.example"]
    assert message["In-Reply-To"] == "<alt.0001@jones.example>"
    assert "<alt.0001@jones.example>" in message["References"]
    assert message["Subject"].endswith(TOKENS.token(case_id))
    with sessions() as session:
        row = session.scalars(select(m.SentMessage)).one()
        assert (row.message_id, row.recipient, row.kind) == (
            outcome.message_id,
            "bob@jones.example",
            "case_reply",
        )
    assert message["Subject"].startswith("Re: ")
    with sessions() as session:
        case = session.get(m.SupportCase, case_id)
        assert case.first_responded_at is not None
        sent = session.scalars(select(m.Activity).where(m.Activity.type == "email_sent")).one()
        assert (sent.direction, sent.support_case_id) == ("outbound", case_id)
        assert f"<{sent.message_id}>" == message["Message-ID"]
        assert sent.details["delivery"] == "sent"
        # One audit entry on the case, by the actor, with the reply and what it changed.
        entry = session.scalars(select(m.AuditEntry)).one()
        assert (entry.actor, entry.entity, entry.entity_id, entry.action) == (
            "operator:test",
            "support_case",
            case_id,
            "reply",
        )
        assert entry.changes["reply_activity_id"] == {"before": None, "after": sent.id}
        assert entry.changes["to"]["after"] == "bob@jones.example"
        assert entry.changes["status"] == {"before": "new", "after": "open"}
        assert entry.changes["first_responded_at"]["before"] is None
        assert "We are on it." not in str(entry.changes)


def test_a_reply_needs_the_reply_permission_and_leaves_nothing_without_it(
    committed_db: Engine, smtp_server: SmtpTestServer
) -> None:
    case_id = _open_case_by_mail(committed_db)
    sessions = make_session_factory(committed_db)
    reader = Actor.for_key(key_id=1, name="reader", scopes=["read", "write"])
    with pytest.raises(PermissionDenied):
        send_case_reply(
            sessions, backend_from_url(smtp_server.url()), actor=reader, case_id=case_id,
            body="Hi", html=None, sender=SENDER, case_tokens=TOKENS,
        )  # fmt: skip
    assert smtp_server.handler.received == []
    with sessions() as session:
        assert session.scalars(select(m.AuditEntry)).all() == []
        assert (
            session.scalars(select(m.Activity).where(m.Activity.type == "email_sent")).all() == []
        )


def test_the_customers_answer_to_our_reply_threads_back_onto_the_case(
    committed_db: Engine, smtp_server: SmtpTestServer
) -> None:
    case_id = _open_case_by_mail(committed_db)
    sessions = make_session_factory(committed_db)
    send_case_reply(
        sessions, backend_from_url(smtp_server.url()), actor=OPERATOR, case_id=case_id,
        body="Hi", html=None, sender=SENDER, case_tokens=TOKENS,
    )  # fmt: skip
    ours = smtp_server.handler.received[0].message["Message-ID"]
    answer = (
        f"From: bob@jones.example\r\nTo: support@acme.test\r\nSubject: Re: thanks\r\n"
        f"Message-ID: <answer@jones.example>\r\nIn-Reply-To: {ours}\r\n\r\nThanks!\r\n"
    ).encode()
    context = MailContext(
        None, None, set(), SlaPolicy(), _resolve, lambda s, e: None, case_tokens=TOKENS
    )
    with sessions.begin() as session:
        outcome = receive_email(session, parsed=parse_rfc822(answer), context=context)
    assert outcome.decision == "reply_to_case"


def test_a_refused_reply_is_failed_and_the_sla_timer_runs_again(
    committed_db: Engine, smtp_server: SmtpTestServer
) -> None:
    case_id = _open_case_by_mail(committed_db)
    smtp_server.handler.refuse_rcpt["bob@jones.example"] = "550 no such user"
    sessions = make_session_factory(committed_db)
    outcome = send_case_reply(
        sessions, backend_from_url(smtp_server.url()), actor=OPERATOR, case_id=case_id,
        body="Hi", html=None, sender=SENDER, case_tokens=TOKENS,
    )  # fmt: skip
    assert outcome.delivery == "failed"
    with sessions() as session:
        assert session.get(m.SupportCase, case_id).first_responded_at is None


def test_unknown_cases_and_empty_bodies_are_refused(
    committed_db: Engine, smtp_server: SmtpTestServer
) -> None:
    case_id = _open_case_by_mail(committed_db)
    sessions = make_session_factory(committed_db)
    backend = backend_from_url(smtp_server.url())
    with pytest.raises(CaseNotFound):
        send_case_reply(
            sessions, backend, actor=OPERATOR, case_id=10**6, body="x", html=None,
            sender=SENDER, case_tokens=TOKENS,
        )  # fmt: skip
    with pytest.raises(InvalidInput):
        send_case_reply(
            sessions,
            backend,
            actor=OPERATOR,
            case_id=case_id,
            body="  ",
            html=None,
            sender=SENDER,
            case_tokens=TOKENS,
        )
    assert smtp_server.handler.received == []
