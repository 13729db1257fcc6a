"""A case number alone opens no case to anyone: the keyed tag, or a contact of the customer."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from crm_core import models as m
from crm_core.mail import CaseTokens
from tests.crm_core.support.test_inbound_mail import CONTEXT, count, fixture, receive

TOKENS = CONTEXT.case_tokens


def _case(session: Session) -> m.SupportCase:
    """A case opened by bob@jones.example (the fixture's sender), and its id."""
    receive(session, fixture("02_multipart_alternative.eml"))
    return session.scalars(select(m.SupportCase)).one()


def _mail(sender: str, subject: str, n: int = 1, *, to: str = "sales@acme.test") -> str:
    return (
        f"From: {sender}\r\nTo: {to}\r\nSubject: {subject}\r\n"
        f"Message-ID: <m{n}-{abs(hash((sender, subject)))}@x.example>\r\n\r\nhello\r\n"
    )


def test_a_stranger_naming_a_case_number_opens_a_new_case(session: Session) -> None:
    case = _case(session)
    outcome = receive(session, _mail("attacker@evil.example", f"Re: [Case #{case.id}]"))
    assert outcome.decision == "new_case"
    assert f"names case #{case.id} without its signed token" in outcome.reason
    assert "not a contact of its customer" in outcome.reason
    assert count(session, m.SupportCase) == 2
    on_case = count(session, m.Activity, m.Activity.support_case_id == case.id)
    assert on_case == 2  # the opening and the first e-mail: nothing of the stranger's
    filed = session.scalars(
        select(m.Activity).where(m.Activity.contact_id != case.contact_id)
        .where(m.Activity.type == "email_received")
    ).one()  # fmt: skip
    assert filed.details["threading"]["reason"] == outcome.reason


def test_a_forged_or_foreign_tag_is_a_stranger_too(session: Session) -> None:
    case = _case(session)
    other_key = CaseTokens.from_secret("another installation")
    for n, token in enumerate([other_key.token(case.id), f"[Case #{case.id}-aaaaaaaa]"]):
        outcome = receive(session, _mail("attacker@evil.example", f"Re: {token}", n))
        assert outcome.decision == "new_case", token
    assert count(session, m.SupportCase) == 3


def test_a_contact_of_the_customer_may_use_the_bare_number(session: Session) -> None:
    case = _case(session)
    outcome = receive(session, _mail("bob@jones.example", f"Also [Case #{case.id}]"))
    assert outcome.decision == "case_token"
    assert "the sender is a contact of its customer" in outcome.reason
    assert count(session, m.SupportCase) == 1


def test_the_signed_token_works_from_any_sender(session: Session) -> None:
    case = _case(session)
    subject = f"Fwd: {TOKENS.token(case.id)}"
    outcome = receive(session, _mail("colleague@elsewhere.example", subject))
    assert outcome.decision == "case_token"
    assert "signed token" in outcome.reason


@pytest.mark.parametrize("status", ["resolved", "closed"])
def test_a_stranger_does_not_reopen_a_closed_case(session: Session, status: str) -> None:
    case = _case(session)
    case.status = status
    session.flush()
    # A reply by References from a stranger, and a bare token from a stranger.
    by_reference = (
        "From: attacker@evil.example\r\nTo: support@acme.test\r\nSubject: Re: hello\r\n"
        "Message-ID: <ref@evil.example>\r\nIn-Reply-To: <alt.0001@jones.example>\r\n\r\nhi\r\n"
    )
    outcome = receive(session, by_reference)
    assert outcome.decision == "new_case"
    assert f"case #{case.id} is {status}" in outcome.reason
    assert case.status == status
    assert count(session, m.Activity, m.Activity.type == "case_status_changed") == 0


def test_the_customer_and_the_signed_token_reopen_a_resolved_case(session: Session) -> None:
    case = _case(session)
    case.status = "resolved"
    session.flush()
    outcome = receive(session, _mail("colleague@x.example", f"Re: {TOKENS.token(case.id)}"))
    assert outcome.decision == "case_token"
    assert case.status == "open"
    case.status = "closed"
    session.flush()
    outcome = receive(session, _mail("bob@jones.example", f"Re: [Case #{case.id}]", 2))
    assert outcome.decision == "case_token"
    assert case.status == "open"
