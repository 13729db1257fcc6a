"""Attachments go with what they belong to; a blob goes when no row names it any more.

These tests commit (forgetting is decided after a commit), so each works on a database
emptied afterwards (``committed_db``), with its own folder of blobs.
"""

from __future__ import annotations

import dataclasses
import hashlib
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from crm_core import merges
from crm_core import models as m
from crm_core.attachments.services import (
    erase_contact_attachments,
    forget_activity_attachments,
    release_blobs,
    released_keys,
    sweep_blobs,
)
from crm_core.blobs.filesystem import FileBlobStore
from crm_core.customers.services import add_contact
from crm_core.db import make_session_factory
from crm_core.editing import contacts, customers
from crm_core.mail import parse_rfc822
from crm_core.people.permissions import Actor
from crm_core.support.inbound_mail import receive_email
from tests.crm_core.attachments.mail import PDF, PNG, message_with
from tests.crm_core.support.test_inbound_mail import CONTEXT

OPERATOR = Actor.operator("tests")
PDF_KEY = hashlib.sha256(PDF).hexdigest()
PNG_KEY = hashlib.sha256(PNG).hexdigest()


@pytest.fixture
def sessions(committed_db: Engine) -> sessionmaker[Session]:
    return make_session_factory(committed_db)


@pytest.fixture
def store(tmp_path: Path) -> FileBlobStore:
    return FileBlobStore(tmp_path / "blobs")


def receive(sessions: sessionmaker[Session], store: FileBlobStore, raw: bytes) -> int:
    """File ``raw`` and commit; the id of the sender's contact."""
    with sessions.begin() as session:
        context = dataclasses.replace(CONTEXT, blobs=store)
        receive_email(session, parsed=parse_rfc822(raw), context=context)
        sender = parse_rfc822(raw).from_address
        return session.scalars(select(m.Contact.id).where(m.Contact.email == sender)).one()


def keys_named(sessions: sessionmaker[Session]) -> list[str]:
    with sessions() as session:
        return sorted(session.scalars(select(m.StoredAttachment.sha256)))


def test_erasing_a_contact_keeps_a_file_someone_else_sent_too(
    sessions: sessionmaker[Session], store: FileBlobStore
) -> None:
    ann = receive(sessions, store, message_with(("a.pdf", "application/pdf", PDF), inline_png=PNG))
    receive(sessions, store, message_with(("b.pdf", "application/pdf", PDF), sender="bo@x.test"))
    with sessions.begin() as session:
        assert erase_contact_attachments(session, contact_id=ann) == 2
        keys = released_keys(session)
    assert keys == {PDF_KEY, PNG_KEY}
    assert keys_named(sessions) == [PDF_KEY]  # Bo's copy
    assert release_blobs(sessions, store, keys) == [PNG_KEY]
    assert sorted(store.keys()) == [PDF_KEY]
    assert released_keys(Session()) == set()


def test_deleting_a_contact_deletes_its_files_but_keeps_its_activities(
    sessions: sessionmaker[Session], store: FileBlobStore
) -> None:
    ann = receive(sessions, store, message_with(("a.pdf", "application/pdf", PDF)))
    with sessions.begin() as session:
        customer = session.get(m.Contact, ann).customer
        other = m.Contact(email="primary@x.test", email_normalized="primary@x.test")
        add_contact(session, customer=customer, contact=other)
        session.flush()
        session.get(m.Contact, ann).is_primary = False
        other.is_primary = True
    with sessions.begin() as session:
        contacts.delete_contact(session, actor=OPERATOR, contact_id=ann)
        keys = released_keys(session)
    release_blobs(sessions, store, keys)
    assert keys_named(sessions) == []
    assert list(store.keys()) == []
    with sessions() as session:
        kept = session.scalars(select(m.Activity).where(m.Activity.type == "email_received")).one()
        assert kept.contact_id is None


def test_deleting_a_customer_deletes_its_files(
    sessions: sessionmaker[Session], store: FileBlobStore
) -> None:
    ann = receive(sessions, store, message_with(("a.pdf", "application/pdf", PDF), inline_png=PNG))
    with sessions.begin() as session:
        customer_id = session.get(m.Contact, ann).customer_id
        customers.delete_customer(session, actor=OPERATOR, customer_id=customer_id)
        keys = released_keys(session)
    assert keys == {PDF_KEY, PNG_KEY}
    release_blobs(sessions, store, keys)
    assert keys_named(sessions) == []
    assert list(store.keys()) == []


def test_a_deleted_activity_takes_its_rows_with_it(
    sessions: sessionmaker[Session], store: FileBlobStore
) -> None:
    receive(sessions, store, message_with(("a.pdf", "application/pdf", PDF)))
    with sessions.begin() as session:
        activity_id = session.scalars(select(m.StoredAttachment.activity_id)).one()
        assert forget_activity_attachments(session, activity_ids=[activity_id]) == 1
        keys = released_keys(session)
    release_blobs(sessions, store, keys)
    assert list(store.keys()) == []


def test_a_rolled_back_deletion_keeps_every_blob(
    sessions: sessionmaker[Session], store: FileBlobStore
) -> None:
    ann = receive(sessions, store, message_with(("a.pdf", "application/pdf", PDF)))
    session = sessions()
    erase_contact_attachments(session, contact_id=ann)
    session.rollback()
    keys = released_keys(session)
    session.close()
    assert release_blobs(sessions, store, keys) == []
    assert keys_named(sessions) == [PDF_KEY]
    assert list(store.keys()) == [PDF_KEY]


def test_merged_contacts_attachments_move_to_the_survivor(
    sessions: sessionmaker[Session], store: FileBlobStore
) -> None:
    ann = receive(sessions, store, message_with(("a.pdf", "application/pdf", PDF)))
    with sessions.begin() as session:
        customer = session.get(m.Contact, ann).customer
        twin = m.Contact(email="ann.work@x.test", email_normalized="ann.work@x.test")
        add_contact(session, customer=customer, contact=twin)
        session.flush()
        twin_id = twin.id
    with sessions.begin() as session:
        merges.merge_contacts(session, actor=OPERATOR, contact_id=ann, document={"into": twin_id})
        assert released_keys(session) == set()
    with sessions.begin() as session:
        activity_id = session.scalars(select(m.StoredAttachment.activity_id)).one()
        assert session.get(m.Activity, activity_id).contact_id == twin_id
        # Erasing the merged id erases nothing: the files are the survivor's now.
        assert erase_contact_attachments(session, contact_id=ann) == 0
        assert erase_contact_attachments(session, contact_id=twin_id) == 1
    assert list(store.keys()) == [PDF_KEY]


def test_sweep_removes_blobs_no_row_names(
    sessions: sessionmaker[Session], store: FileBlobStore
) -> None:
    receive(sessions, store, message_with(("a.pdf", "application/pdf", PDF)))
    orphan = store.put(b"left by a rolled-back receive")
    assert sweep_blobs(sessions, store) == [orphan]
    assert list(store.keys()) == [PDF_KEY]


@pytest.mark.usefixtures("postgres_available")
def test_a_release_waits_for_a_receive_of_the_same_file_in_flight(
    database_url: str, sessions: sessionmaker[Session], store: FileBlobStore
) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("the advisory lock is PostgreSQL's; SQLite serializes every writer")
    ann = receive(sessions, store, message_with(("a.pdf", "application/pdf", PDF)))
    with sessions.begin() as session:
        erase_contact_attachments(session, contact_id=ann)
        keys = released_keys(session)
    # A second message with the same file is being filed: its blob is written, not committed.
    receiving = sessions()
    receiving.begin()
    context = dataclasses.replace(CONTEXT, blobs=store)
    raw = message_with(("again.pdf", "application/pdf", PDF), sender="bo@x.test")
    receive_email(receiving, parsed=parse_rfc822(raw), context=context)
    released: list[list[str]] = []
    releaser = threading.Thread(
        target=lambda: released.append(release_blobs(sessions, store, keys))
    )
    releaser.start()
    time.sleep(0.5)
    assert releaser.is_alive(), "the release must wait for the receive's lock"
    receiving.commit()
    receiving.close()
    releaser.join(timeout=10)
    assert released == [[]]
    assert list(store.keys()) == [PDF_KEY]
