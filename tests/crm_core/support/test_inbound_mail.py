"""Threading decisions for every literal e-mail fixture, and the sequences that matter."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from crm_core import models as m
from crm_core.base.touched import Touched
from crm_core.customers.services import create_customer
from crm_core.mail import CaseTokens, parse_rfc822
from crm_core.notifications.services import add_subscription
from crm_core.support.inbound_mail import MailContext, MailOutcome, receive_email
from crm_core.support.sla import SlaPolicy

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "emails"
SUPPORT = {"support@acme.test", "help@acme.test"}

# Each fixture alone, on an empty database, with the support addresses above.
STANDALONE = {
    "01_plain_text.eml": "contact_activity",
    "02_multipart_alternative.eml": "new_case",
    "03_html_only.eml": "contact_activity",
    "04_iso_8859_1.eml": "new_case",
    "05_windows_1252.eml": "contact_activity",
    "06_iso_2022_jp.eml": "new_case",
    "07_koi8_r.eml": "new_case",
    "08_rfc2047_names.eml": "contact_activity",
    "09_broken_headers.eml": "new_case",
    "10_missing_message_id.eml": "contact_activity",
    "11_reply_in_reply_to.eml": "new_case",  # what it replies to is not stored
    "12_case_token.eml": "new_case",  # case #123 does not exist; sent to help@
    "13_attachments.eml": "new_case",
    "14_auto_replied.eml": "auto_generated",
    "15_out_of_office_x_autoreply.eml": "auto_generated",
    "16_mailing_list.eml": "auto_generated",
    "17_precedence_bulk.eml": "auto_generated",
    "18_dsn_bounce.eml": "bounce_unverified",  # reports no message we sent
    "19_microsoft_ndr.eml": "bounce_unverified",  # reports no message we sent
    "20_html_xss.eml": "new_case",
    "21_unknown_8bit_charset.eml": "new_case",
    "22_mislabeled_latin1_as_utf8.eml": "new_case",
    "23_bad_base64_qp.eml": "new_case",
    "24_missing_boundary.eml": "new_case",
    "25_long_headers.eml": "new_case",
    "26_no_from.eml": "no_sender",
    "27_nested_rfc822.eml": "new_case",
    "28_exim_bounce.eml": "bounce_unverified",  # reports no message we sent
    "29_exchange_oof.eml": "auto_generated",
    "30_crlf_related.eml": "contact_activity",
}


def resolve_contact(session: Session, email: str, name: str | None) -> tuple[m.Contact, Touched]:
    contact = find_contact(session, email)
    if contact is None:
        contact = m.Contact(email=email, email_normalized=email, full_name=name)
        create_customer(session, name=name or email, primary_contact=contact)
    return contact, Touched()


def find_contact(session: Session, email: str) -> m.Contact | None:
    return session.scalars(select(m.Contact).where(m.Contact.email_normalized == email)).first()


CONTEXT = MailContext(
    source_id=None,
    event_id=None,
    support_addresses=SUPPORT,
    sla=SlaPolicy(),
    resolve_contact=resolve_contact,
    find_contact=find_contact,
    case_tokens=CaseTokens.from_secret("test secret key"),
)


def receive(session: Session, raw: bytes | str) -> MailOutcome:
    data = raw if isinstance(raw, bytes) else raw.encode()
    return receive_email(session, parsed=parse_rfc822(data), context=CONTEXT)


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def count(session: Session, model: type, *where: object) -> int:
    return session.scalar(select(func.count()).select_from(model).where(*where))


def test_every_fixture_has_an_expected_decision() -> None:
    assert set(STANDALONE) == {p.name for p in FIXTURES.glob("*.eml")}


@pytest.mark.parametrize(("name", "decision"), sorted(STANDALONE.items()))
def test_standalone_thread_decision(session: Session, name: str, decision: str) -> None:
    outcome = receive(session, fixture(name))
    assert outcome.decision == decision, outcome.reason
    cases = count(session, m.SupportCase)
    assert cases == (1 if decision == "new_case" else 0)
    if decision in ("new_case", "contact_activity"):
        activity = session.scalars(
            select(m.Activity).where(m.Activity.type == "email_received")
        ).one()
        assert activity.details["threading"]["decision"] == decision
        assert activity.details["threading"]["reason"] == outcome.reason


def reply(to_id: str, *, subject: str = "Re: hello", sender: str = "bob@jones.example") -> str:
    return (
        f"From: {sender}\r\nTo: support@acme.test\r\nSubject: {subject}\r\n"
        f"Message-ID: <reply-{abs(hash((to_id, subject)))}@jones.example>\r\n"
        f"In-Reply-To: <{to_id}>\r\nReferences: <{to_id}>\r\n\r\nThanks!\r\n"
    )


def test_a_reply_to_a_case_message_joins_the_case(session: Session) -> None:
    receive(session, fixture("02_multipart_alternative.eml"))
    outcome = receive(session, reply("alt.0001@jones.example"))
    assert outcome.decision == "reply_to_case"
    case = session.scalars(select(m.SupportCase)).one()
    assert count(session, m.Activity, m.Activity.support_case_id == case.id) == 3


def test_a_reply_filed_before_its_parent_is_joined_by_the_parent(session: Session) -> None:
    first = receive(session, reply("alt.0001@jones.example"))
    assert first.decision == "new_case"
    opened = session.scalars(select(m.SupportCase)).one()
    assert opened.subject == "Re: hello"

    outcome = receive(session, fixture("02_multipart_alternative.eml"))

    assert outcome.decision == "parent_of_reply"
    assert f"of case #{opened.id}" in outcome.reason
    case = session.scalars(select(m.SupportCase)).one()
    # The parent opens the case now: its subject, its Message-ID as the root.
    assert case.root_message_id == "alt.0001@jones.example"
    assert case.subject != "Re: hello"
    emails = session.scalars(
        select(m.Activity).where(m.Activity.type == "email_received").order_by(m.Activity.id)
    ).all()
    assert [e.support_case_id for e in emails] == [case.id, case.id]
    # A third message that names only the parent joins the same case.
    third = receive(session, reply("alt.0001@jones.example", subject="Re: Re: hello"))
    assert third.decision == "reply_to_case"
    assert count(session, m.SupportCase) == 1


def test_a_message_named_only_by_a_contact_activity_still_opens_its_case(
    session: Session,
) -> None:
    message = reply("alt.0001@jones.example").replace("support@acme.test", "sales@acme.test")
    assert receive(session, message).decision == "contact_activity"

    outcome = receive(session, fixture("02_multipart_alternative.eml"))

    assert outcome.decision == "new_case"


def test_the_references_of_each_message_are_recorded(session: Session) -> None:
    receive(session, reply("alt.0001@jones.example"))
    refs = session.scalars(select(m.MessageReference.message_id)).all()
    assert refs == ["alt.0001@jones.example"]
    receive(session, fixture("01_plain_text.eml"))  # names nothing
    assert count(session, m.MessageReference) == 1


def test_a_reply_to_a_plain_message_is_an_activity_on_the_sender(session: Session) -> None:
    receive(session, fixture("01_plain_text.eml"))
    outcome = receive(session, fixture("11_reply_in_reply_to.eml"))
    assert outcome.decision == "reply_to_message"
    assert count(session, m.SupportCase) == 0


def test_a_signed_case_token_files_the_message_on_that_case(session: Session) -> None:
    receive(session, fixture("02_multipart_alternative.eml"))
    case = session.scalars(select(m.SupportCase)).one()
    message = (
        "From: someone.else@example.com\r\nTo: sales@acme.test\r\n"
        f"Subject: Fwd: about {CONTEXT.case_tokens.token(case.id)}\r\n"
        "Message-ID: <token@x.example>\r\n\r\nhi\r\n"
    )
    outcome = receive(session, message)
    assert outcome.decision == "case_token"
    assert count(session, m.SupportCase) == 1


def test_the_same_message_twice_makes_one_activity(session: Session) -> None:
    first = receive(session, fixture("02_multipart_alternative.eml"))
    second = receive(session, fixture("02_multipart_alternative.eml"))
    assert (first.decision, second.decision) == ("new_case", "duplicate")
    assert count(session, m.Activity, m.Activity.type == "email_received") == 1
    assert count(session, m.SupportCase) == 1


def test_a_reply_to_a_resolved_case_reopens_it(session: Session) -> None:
    add_subscription(session, url="https://hooks.example/cases", events=["*"])
    receive(session, fixture("02_multipart_alternative.eml"))
    case = session.scalars(select(m.SupportCase)).one()
    case.status = "resolved"
    session.flush()
    receive(session, reply("alt.0001@jones.example"))
    assert case.status == "open"
    assert count(session, m.Activity, m.Activity.type == "case_status_changed") == 1
    # Opened by the first message, reopened by the reply: one notification each.
    owed = session.scalars(select(m.NotificationDelivery).order_by(m.NotificationDelivery.id))
    assert [(d.event_type, d.payload["data"]["case"]["id"]) for d in owed] == [
        ("case.opened", case.id),
        ("case.status_changed", case.id),
    ]
    changed = session.scalars(
        select(m.NotificationDelivery.payload).where(
            m.NotificationDelivery.event_type == "case.status_changed"
        )
    ).one()
    assert (changed["data"]["previous_status"], changed["data"]["status"]) == ("resolved", "open")


def test_auto_replies_never_open_cases_and_create_nobody(session: Session) -> None:
    for name in ("14_auto_replied.eml", "15_out_of_office_x_autoreply.eml"):
        assert receive(session, fixture(name)).decision == "auto_generated"
    assert count(session, m.SupportCase) == 0
    assert count(session, m.Contact) == 0


def test_an_auto_reply_from_a_known_contact_is_on_their_timeline(session: Session) -> None:
    resolve_contact(session, "grace@example.org", "Grace")
    outcome = receive(session, fixture("14_auto_replied.eml"))
    assert outcome.decision == "auto_generated"
    assert count(session, m.SupportCase) == 0
    assert count(session, m.Activity, m.Activity.type == "email_received") == 1
