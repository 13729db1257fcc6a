"""Mailbox services: add, list and remove, the password kept out of sight, and the lease."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest
from sqlalchemy.orm import Session

from crm_core.db import utcnow
from crm_core.errors import InvalidInput
from crm_core.ingestion.models import Source
from crm_core.mailboxes.services import (
    acquire_lease,
    add_mailbox,
    enabled_mailbox_ids,
    get_mailbox,
    list_mailboxes,
    record_poll,
    release_lease,
    remove_mailbox,
)
from tests.factories import MailboxFactory

SECRET = "pa%24%24-very-secret"  # percent-encoded "pa$$-very-secret"
MINUTE = dt.timedelta(minutes=1)


def test_add_list_and_remove(session: Session) -> None:
    view = add_mailbox(
        session,
        name=" support ",
        url=f"imaps://help%40example.com:{SECRET}@imap.example.com/Support",
        move_to="Processed",
    )
    assert (view.name, view.host, view.port, view.security) == (
        "support", "imap.example.com", 993, "tls",
    )  # fmt: skip
    assert (view.username, view.folder) == ("help@example.com", "Support")
    assert view.move_to == "Processed"
    assert view.url == "imaps://help@example.com@imap.example.com:993/Support"
    assert get_mailbox(session, name="support").password == "pa$$-very-secret"
    assert [v.name for v in list_mailboxes(session)] == ["support"]
    assert remove_mailbox(session, name="support") is True
    assert remove_mailbox(session, name="support") is False
    assert list_mailboxes(session) == []


def test_the_password_appears_in_no_view_and_no_repr(session: Session) -> None:
    add_mailbox(session, name="support", url=f"imap://u:{SECRET}@host/?starttls=1")
    (view,) = list_mailboxes(session)
    assert "password" not in {f.name for f in dataclasses.fields(view)}
    assert "secret" not in repr(view)
    assert view.url == "imap://u@host:143/INBOX?starttls=1"
    mailbox = get_mailbox(session, name="support")
    assert "secret" not in repr(mailbox)
    assert "secret" not in str(mailbox)


def test_a_name_is_taken_once(session: Session) -> None:
    add_mailbox(session, name="support", url="imap://u:p@host/")
    with pytest.raises(InvalidInput, match="already exists") as caught:
        add_mailbox(session, name="support", url="imap://v:q@other/")
    assert [e.loc for e in caught.value.errors] == [("name",)]
    (view,) = list_mailboxes(session)
    assert view.host == "host"


@pytest.mark.parametrize("name", ["", "   ", "x" * 73])
def test_a_name_is_required_and_short(session: Session, name: str) -> None:
    with pytest.raises(InvalidInput, match="name"):
        add_mailbox(session, name=name, url="imap://u:p@host/")


def test_move_to_must_be_another_folder(session: Session) -> None:
    with pytest.raises(InvalidInput, match="move_to"):
        add_mailbox(session, name="support", url="imap://u:p@host/Support", move_to=" Support ")


def test_a_bad_url_adds_nothing(session: Session) -> None:
    with pytest.raises(InvalidInput, match="url"):
        add_mailbox(session, name="support", url="http://u:p@host/")
    assert list_mailboxes(session) == []


def test_only_enabled_mailboxes_are_polled(session: Session) -> None:
    on = MailboxFactory()
    MailboxFactory(enabled=False)
    assert enabled_mailbox_ids(session) == [on.id]


def test_a_lease_has_one_holder_until_it_expires(session: Session) -> None:
    mailbox = MailboxFactory()
    assert acquire_lease(session, mailbox_id=mailbox.id, owner="a", ttl=MINUTE)
    assert not acquire_lease(session, mailbox_id=mailbox.id, owner="b", ttl=MINUTE)
    # The holder renews.
    assert acquire_lease(session, mailbox_id=mailbox.id, owner="a", ttl=MINUTE)
    session.refresh(mailbox)
    assert mailbox.lease_owner == "a"
    assert mailbox.lease_expires_at is not None
    assert mailbox.lease_expires_at > utcnow()
    # An expired lease goes to whoever asks next (the holder died).
    mailbox.lease_expires_at = utcnow() - dt.timedelta(seconds=1)
    session.flush()
    assert acquire_lease(session, mailbox_id=mailbox.id, owner="b", ttl=MINUTE)
    assert not release_lease(session, mailbox_id=mailbox.id, owner="a")
    assert release_lease(session, mailbox_id=mailbox.id, owner="b")
    session.refresh(mailbox)
    assert (mailbox.lease_owner, mailbox.lease_expires_at) == (None, None)
    assert acquire_lease(session, mailbox_id=mailbox.id, owner="a", ttl=MINUTE)


def test_no_lease_on_a_disabled_or_missing_mailbox(session: Session) -> None:
    mailbox = MailboxFactory(enabled=False)
    assert not acquire_lease(session, mailbox_id=mailbox.id, owner="a", ttl=MINUTE)
    assert not acquire_lease(session, mailbox_id=mailbox.id + 1000, owner="a", ttl=MINUTE)


def test_only_the_lease_holder_records_progress(session: Session) -> None:
    mailbox = MailboxFactory(last_uid=5, uidvalidity=7)
    acquire_lease(session, mailbox_id=mailbox.id, owner="a", ttl=MINUTE)
    kept = record_poll(
        session, mailbox_id=mailbox.id, owner="b", uidvalidity=9, last_uid=1, error=None
    )
    assert kept is False
    kept = record_poll(
        session, mailbox_id=mailbox.id, owner="a", uidvalidity=7, last_uid=42, error="boom"
    )
    assert kept is True
    session.refresh(mailbox)
    assert (mailbox.uidvalidity, mailbox.last_uid, mailbox.last_error) == (7, 42, "boom")
    assert mailbox.last_polled_at is not None


def test_a_mailbox_stores_under_its_own_source_kept_across_removal(session: Session) -> None:
    first = add_mailbox(session, name="support", url="imap://u:p@host/")
    source = session.get(Source, first.source_id)
    assert source is not None
    assert source.name == "mailbox-support"
    assert source.secrets == []  # nobody can post webhooks as a mailbox
    remove_mailbox(session, name="support")
    again = add_mailbox(session, name="support", url="imap://u:p@host/")
    assert again.source_id == first.source_id


def test_the_longest_name_fits_the_source_name(session: Session) -> None:
    view = add_mailbox(session, name="x" * 72, url="imap://u:p@host/")
    source = session.get(Source, view.source_id)
    assert source is not None
    assert len(source.name) == 80
