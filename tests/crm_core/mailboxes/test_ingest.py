"""store_message: one event per message, by UID while UIDVALIDITY holds, then by Message-ID."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from crm_core.ingestion.models import EventStatus, InboxEvent, Source
from crm_core.mailboxes.imap import FetchedMessage
from crm_core.mailboxes.ingest import message_id_of, store_message
from crm_core.mailboxes.models import Mailbox
from crm_core.mailboxes.services import add_mailbox, get_mailbox
from tests.crm_core.mail.test_structure import empty_parts
from tests.imap_server import support_request

NO_FROM = (
    b"To: support@acme.test\r\nSubject: who am I\r\nMessage-ID: <anon@x.example>\r\n\r\nHi\r\n"
)


@pytest.fixture
def mailbox(session: Session) -> Mailbox:
    add_mailbox(session, name="support", url="imap://u:p@host/")
    found = get_mailbox(session, name="support")
    assert found is not None
    return found


def fetched(
    uid: int, raw: bytes, *, uidvalidity: int = 7, renumbered: bool = False
) -> FetchedMessage:
    return FetchedMessage(uid, uidvalidity, raw, uids_renumbered=renumbered)


def event_count(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(InboxEvent)) or 0


def test_a_message_becomes_an_email_event_of_the_mailbox_source(
    session: Session, mailbox: Mailbox
) -> None:
    event_id = store_message(session, mailbox=mailbox, fetched=fetched(3, support_request(1)))
    event = session.get(InboxEvent, event_id)
    assert event is not None
    source = session.get(Source, event.source_id)
    assert source is not None
    assert source.name == "mailbox-support"
    assert (event.kind, event.content_type, event.status) == (
        "emails",
        "message/rfc822",
        "received",
    )
    assert event.webhook_id == "imap:7:3"
    assert event.headers["message-id"] == "request-1@customer.example"
    assert event.body == support_request(1)


def test_the_same_uid_is_stored_once(session: Session, mailbox: Mailbox) -> None:
    first = store_message(session, mailbox=mailbox, fetched=fetched(3, support_request(1)))
    again = store_message(session, mailbox=mailbox, fetched=fetched(3, support_request(1)))
    assert first is not None
    assert again is None
    assert event_count(session) == 1


def test_while_uidvalidity_holds_another_uid_is_another_event(
    session: Session, mailbox: Mailbox
) -> None:
    # A copy under a new UID is stored; the pipeline's Message-ID dedupe files it once.
    assert store_message(session, mailbox=mailbox, fetched=fetched(3, support_request(1)))
    assert store_message(session, mailbox=mailbox, fetched=fetched(4, support_request(1)))
    assert event_count(session) == 2


def test_after_renumbering_the_message_id_decides(session: Session, mailbox: Mailbox) -> None:
    assert store_message(session, mailbox=mailbox, fetched=fetched(3, support_request(1)))
    renumbered_old = fetched(1, support_request(1), uidvalidity=8, renumbered=True)
    renumbered_new = fetched(2, support_request(2), uidvalidity=8, renumbered=True)
    assert store_message(session, mailbox=mailbox, fetched=renumbered_old) is None
    assert store_message(session, mailbox=mailbox, fetched=renumbered_new) is not None
    assert event_count(session) == 2


def test_message_ids_of_other_sources_do_not_count(session: Session, mailbox: Mailbox) -> None:
    add_mailbox(session, name="sales", url="imap://u:p@host/")
    sales = get_mailbox(session, name="sales")
    assert sales is not None
    assert store_message(session, mailbox=sales, fetched=fetched(3, support_request(1)))
    renumbered = fetched(1, support_request(1), uidvalidity=8, renumbered=True)
    assert store_message(session, mailbox=mailbox, fetched=renumbered) is not None


def test_a_message_without_from_is_stored_invalid(session: Session, mailbox: Mailbox) -> None:
    event_id = store_message(session, mailbox=mailbox, fetched=fetched(5, NO_FROM))
    event = session.get(InboxEvent, event_id)
    assert event is not None
    assert event.status == EventStatus.INVALID
    assert event.errors
    assert event.errors[0]["field"] == "from"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"Message-ID: < a@b.example >\r\n\r\n", "a@b.example"),
        (b"Message-ID: not an id\r\n\r\n", None),
        (b"Subject: none\r\n\r\n", None),
        (b"\xff\xfe garbage", None),
    ],
)
def test_message_id_of(raw: bytes, expected: str | None) -> None:
    assert message_id_of(raw) == expected


def test_a_mime_bomb_is_stored_invalid_with_the_reason(session: Session, mailbox: Mailbox) -> None:
    bomb = empty_parts(40_000)
    event_id = store_message(session, mailbox=mailbox, fetched=fetched(6, bomb))
    event = session.get(InboxEvent, event_id)
    assert event is not None
    assert event.status == EventStatus.INVALID
    assert event.errors is not None
    assert event.errors[0]["field"] == "body"
    assert "more than 500 MIME parts" in event.errors[0]["message"]


def test_without_message_id_a_renumbered_message_is_known_by_its_bytes(
    session: Session, mailbox: Mailbox
) -> None:
    raw = b"From: ann@client.example\r\nTo: support@acme.test\r\nSubject: no id\r\n\r\nHi\r\n"
    assert store_message(session, mailbox=mailbox, fetched=fetched(3, raw))
    renumbered = fetched(1, raw, uidvalidity=8, renumbered=True)
    assert store_message(session, mailbox=mailbox, fetched=renumbered) is None
    other = fetched(2, raw.replace(b"Hi", b"Hello"), uidvalidity=8, renumbered=True)
    assert store_message(session, mailbox=mailbox, fetched=other) is not None
