"""A bounce suppresses only when it is a report of a message we sent, to the address it names."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from crm_core import models as m
from crm_core.bounces.models import SentKind
from crm_core.bounces.services import SentRecord, record_sent
from tests.crm_core.support.test_inbound_mail import count, fixture, receive


def dsn(
    *,
    n: int = 1,
    recipient: str = "nobody@gone.example",
    status: str = "5.1.1",
    original: str = "send.4711@acme.test",
    report_type: str = "delivery-status",
) -> str:
    """An RFC 3464 report of ``original`` failing for ``recipient``."""
    return (
        "From: Mail Delivery System <MAILER-DAEMON@mx.acme.test>\r\n"
        "To: campaigns@acme.test\r\nSubject: Undelivered Mail\r\n"
        f"Message-ID: <dsn.{n}.{status}@mx.acme.test>\r\nMIME-Version: 1.0\r\n"
        f'Content-Type: multipart/report; report-type={report_type}; boundary="B"\r\n\r\n'
        "--B\r\nContent-Type: text/plain\r\n\r\nIt failed.\r\n\r\n"
        "--B\r\nContent-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns; mx.acme.test\r\n\r\n"
        f"Final-Recipient: rfc822; {recipient}\r\nAction: failed\r\nStatus: {status}\r\n"
        f"Diagnostic-Code: smtp; {status} failed\r\n\r\n"
        "--B\r\nContent-Type: text/rfc822-headers\r\n\r\n"
        f"From: campaigns@acme.test\r\nTo: {recipient}\r\nMessage-ID: <{original}>\r\n\r\n"
        "--B--\r\n"
    )


def sent(
    session: Session, message_id: str = "<send.4711@acme.test>", to: str = "nobody@gone.example"
) -> None:
    record_sent(session, [SentRecord(message_id, to, SentKind.CAMPAIGN)])


def suppressed(session: Session) -> set[str]:
    return set(session.scalars(select(m.Suppression.email_normalized)))


def unverified(session: Session) -> list[m.Activity]:
    query = select(m.Activity).where(m.Activity.type == "bounce_unverified")
    return list(session.scalars(query.order_by(m.Activity.id)))


def test_a_plain_mail_with_x_failed_recipients_suppresses_nobody(session: Session) -> None:
    forged = (
        "From: attacker@evil.example\r\nTo: support@acme.test\r\nSubject: hi\r\n"
        "Message-ID: <forged@evil.example>\r\nX-Failed-Recipients: ceo@customer.example\r\n\r\nhi"
    )
    outcome = receive(session, forged)
    assert outcome.decision == "bounce_unverified"
    assert suppressed(session) == set()
    [activity] = unverified(session)
    assert activity.details["reason"] == "not an RFC 3464 delivery-status report"
    assert activity.details["recipients"] == ["ceo@customer.example"]


def test_a_report_of_a_message_we_never_sent_suppresses_nobody(session: Session) -> None:
    outcome = receive(session, dsn(recipient="ceo@customer.example", original="made@up.example"))
    assert outcome.decision == "bounce_unverified"
    assert suppressed(session) == set()
    assert "<made@up.example> is not a message this platform sent" in outcome.reason
    assert len(unverified(session)) == 1


def test_a_report_naming_someone_else_than_our_recipient_suppresses_nobody(
    session: Session,
) -> None:
    # The attacker received a campaign message and quotes its Message-ID.
    sent(session, to="attacker@evil.example")
    outcome = receive(session, dsn(recipient="ceo@customer.example"))
    assert outcome.decision == "bounce_unverified"
    assert "was sent to attacker@evil.example" in outcome.reason
    assert suppressed(session) == set()


def test_a_report_without_the_report_type_is_not_believed(session: Session) -> None:
    sent(session)
    outcome = receive(session, dsn(report_type="disposition-notification"))
    assert outcome.decision == "bounce_unverified"
    assert suppressed(session) == set()


def test_the_fixture_report_suppresses_once_its_message_is_ours(session: Session) -> None:
    sent(session)
    outcome = receive(session, fixture("18_dsn_bounce.eml"))
    assert outcome.decision == "bounce"
    assert suppressed(session) == {"nobody@gone.example"}
    row = session.scalars(select(m.Suppression)).one()
    assert (row.reason, row.detail) == ("bounced", row.detail)
    assert row.detail.startswith("5.1.1")
    assert unverified(session) == []


def test_a_permanent_failure_suppresses_at_once_and_a_replay_changes_nothing(
    session: Session,
) -> None:
    sent(session)
    assert receive(session, dsn()).decision == "bounce"
    assert receive(session, dsn()).decision == "bounce"
    assert suppressed(session) == {"nobody@gone.example"}
    assert count(session, m.MailBounce) == 1


def test_transient_failures_suppress_after_three_within_seven_days(session: Session) -> None:
    sent(session)
    for n in (1, 2):
        outcome = receive(session, dsn(n=n, status="4.2.2"))
        assert outcome.reason == "transient failure counted for nobody@gone.example"
    receive(session, dsn(n=2, status="4.2.2"))  # a replay counts once
    assert suppressed(session) == set()
    outcome = receive(session, dsn(n=3, status="4.2.2"))
    assert outcome.reason == "suppressed nobody@gone.example"
    row = session.scalars(select(m.Suppression)).one()
    assert row.detail.startswith("3 transient failures within 7 days")


def test_transient_failures_older_than_the_window_do_not_count(session: Session) -> None:
    sent(session)
    for n in (1, 2):
        receive(session, dsn(n=n, status="4.2.2"))
    old = dt.datetime.now(dt.UTC) - dt.timedelta(days=8)
    session.execute(update(m.MailBounce).values(received_at=old))
    receive(session, dsn(n=3, status="4.2.2"))
    assert suppressed(session) == set()


def test_every_kind_of_mail_we_send_is_recorded(session: Session) -> None:
    sent(session, "<A.1@Acme.test>", "Someone@Example.com")
    sent(session, "<A.1@Acme.test>", "someone@example.com")  # idempotent
    row = session.scalars(select(m.SentMessage)).one()
    assert (row.message_id, row.recipient, row.kind) == (
        "A.1@Acme.test",
        "someone@example.com",
        "campaign",
    )
