"""Acknowledgements of new cases: sent once, never to robots or ourselves, never in a loop."""

from __future__ import annotations

from email.message import EmailMessage

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from crm_core import models as m
from crm_core.base.touched import Touched
from crm_core.customers.services import create_customer
from crm_core.db import make_session_factory
from crm_core.mail import CaseTokens, parse_rfc822
from crm_core.mail_transport.backends import backend_from_url
from crm_core.support.auto_ack import AutoAckSettings
from crm_core.support.inbound_mail import MailContext, MailOutcome, receive_email
from crm_core.support.pending_mail import deliver_pending, pending_deliveries
from crm_core.support.services import DEFAULT_SLA_HOURS
from tests.smtp_server import SmtpTestServer, smtp_server

__all__ = ["smtp_server"]

SUPPORT = "support@acme.test"
TOKENS = CaseTokens.from_secret("test secret key")
SENDER = f"Acme Support <{SUPPORT}>"
ACK = AutoAckSettings(
    enabled=True,
    subject="Re: {{ case.subject }}",
    text="Case #{{ case.id }} is open.",
    sender=SENDER,
    own_addresses=frozenset({SUPPORT}),
    per_sender_per_day=3,
)


def _resolve(session: Session, email: str, name: str | None) -> tuple[m.Contact, Touched]:
    found = session.scalars(select(m.Contact).where(m.Contact.email_normalized == email)).first()
    if found is None:
        found = m.Contact(email=email, email_normalized=email, full_name=name)
        create_customer(session, name=name or email, primary_contact=found)
    return found, Touched()


def _find(session: Session, email: str) -> m.Contact | None:
    return session.scalars(select(m.Contact).where(m.Contact.email_normalized == email)).first()


def receive(session: Session, raw: bytes, ack: AutoAckSettings = ACK) -> MailOutcome:
    context = MailContext(
        None, None, {SUPPORT}, DEFAULT_SLA_HOURS, _resolve, _find, ack, case_tokens=TOKENS
    )
    return receive_email(session, parsed=parse_rfc822(raw), context=context)


def request(n: int, *, sender: str = "ann@client.example", headers: str = "") -> bytes:
    return (
        f"From: {sender}\r\nTo: {SUPPORT}\r\nSubject: Broken thing {n}\r\n"
        f"Message-ID: <req-{n}-{sender}>\r\n{headers}\r\nIt broke.\r\n"
    ).encode()


def acks(session: Session) -> int:
    query = select(func.count()).where(m.Activity.details["auto_ack"].as_boolean())
    return session.scalar(query) or 0


def test_a_new_case_gets_one_acknowledgement_threaded_and_marked(
    committed_db: Engine, smtp_server: SmtpTestServer
) -> None:
    sessions = make_session_factory(committed_db)
    with sessions.begin() as session:
        outcome = receive(session, request(1))
    assert outcome.reason.endswith("; acknowledged")
    backend = backend_from_url(smtp_server.url())
    with sessions() as session:
        [pending] = pending_deliveries(session)
    assert deliver_pending(sessions, backend, activity_id=pending, sender=SENDER) == "sent"
    assert deliver_pending(sessions, backend, activity_id=pending, sender=SENDER) == "skipped"
    [mail] = smtp_server.handler.received
    message: EmailMessage = mail.message
    assert mail.rcpt_tos == ["ann@client.example"]
    assert message["Auto-Submitted"] == "auto-replied"
    assert message["In-Reply-To"] == "<req-1-ann@client.example>"
    assert "[Case #" in message["Subject"]
    assert "is open" in message.get_content()


@pytest.mark.parametrize(
    ("sender", "headers", "why"),
    [
        ("bot@client.example", "Auto-Submitted: auto-replied\r\n", "auto-generated"),
        ("news@client.example", "Precedence: bulk\r\n", "auto-generated"),
        ("list@client.example", "List-Id: <dev.lists.client.example>\r\n", "auto-generated"),
        (SUPPORT, "", "own addresses"),
        ("other@acme.test", "", "own domain"),
    ],
)
def test_robots_lists_and_ourselves_get_no_acknowledgement(
    session: Session, sender: str, headers: str, why: str
) -> None:
    outcome = receive(session, request(2, sender=sender, headers=headers))
    assert acks(session) == 0
    if outcome.decision == "new_case":
        assert why in outcome.reason


def test_acknowledgements_are_off_by_default(session: Session) -> None:
    from dataclasses import replace

    receive(session, request(3), ack=replace(ACK, enabled=False))
    assert acks(session) == 0


def test_one_sender_gets_at_most_the_daily_limit(session: Session) -> None:
    for n in range(6):
        receive(session, request(10 + n))
    assert session.scalar(select(func.count()).select_from(m.SupportCase)) == 6
    assert acks(session) == 3


def _robot_reply(ack: EmailMessage, *, keep_threading: bool) -> bytes:
    """A naive auto-responder: answers everything, keeping or dropping the threading."""
    threading = f"In-Reply-To: {ack['Message-ID']}\r\n" if keep_threading else ""
    subject = f"Re: {ack['Subject']}" if keep_threading else "I am away"
    return (
        f"From: robot@elsewhere.example\r\nTo: {SUPPORT}\r\nSubject: {subject}\r\n"
        f"Message-ID: <robot-{abs(hash(ack['Message-ID']))}@elsewhere.example>\r\n"
        f"{threading}\r\nI am a robot and I answer everything.\r\n"
    ).encode()


@pytest.mark.parametrize("keep_threading", [True, False])
def test_two_auto_responders_stop_by_themselves(
    committed_db: Engine, smtp_server: SmtpTestServer, keep_threading: bool
) -> None:
    sessions = make_session_factory(committed_db)
    backend = backend_from_url(smtp_server.url())
    inbound = [request(99, sender="robot@elsewhere.example")]
    rounds = 0
    while inbound and rounds < 50:
        rounds += 1
        with sessions.begin() as session:
            for raw in inbound:
                receive(session, raw)
        with sessions() as session:
            pending = pending_deliveries(session)
        before = len(smtp_server.handler.received)
        for activity_id in pending:
            deliver_pending(sessions, backend, activity_id=activity_id, sender=SENDER)
        # The robot answers every acknowledgement it received this round.
        inbound = [
            _robot_reply(mail.message, keep_threading=keep_threading)
            for mail in smtp_server.handler.received[before:]
        ]
    assert not inbound, "the exchange did not stop"
    sent = len(smtp_server.handler.received)
    # Threaded answers land on the case (one acknowledgement in all); a robot that drops
    # the threading is cut off by the per-sender limit.
    assert sent == (1 if keep_threading else ACK.per_sender_per_day)


def test_an_acknowledgement_is_recorded_as_sent_with_the_signed_token(session: Session) -> None:
    outcome = receive(session, request(1))
    [case_id] = [i for t, i in outcome.touched.items() if t == "support_case"]
    ack = session.scalars(select(m.Activity).where(m.Activity.type == "email_sent")).one()
    assert ack.details["subject"].endswith(TOKENS.token(case_id))
    row = session.scalars(select(m.SentMessage)).one()
    assert (row.message_id, row.recipient, row.kind) == (
        ack.message_id,
        "ann@client.example",
        "auto_ack",
    )
