"""Secrets at rest: what the database holds is a token, what the services see is the secret."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import Engine, select, text
from sqlalchemy.exc import StatementError
from sqlalchemy.orm import Session

from crm_core.db import make_engine, make_session_factory
from crm_core.encryption.keyring import UndecryptableSecret
from crm_core.encryption.types import KeyringMissing
from crm_core.ingestion import services as sources
from crm_core.ingestion.models import SourceSecret
from crm_core.mailboxes import services as mailboxes
from crm_core.notifications import services as notifications
from crm_core.notifications.models import Subscription
from tests.keyring import TEST_KEYRING

PASSWORD = "imap-p@ss-do-not-store"


def _raw(session: Session, sql: str) -> list[str]:
    return list(session.execute(text(sql)).scalars())


def test_signing_secrets_are_stored_encrypted(session: Session) -> None:
    source, first = sources.create_source(session, name="website")
    second = sources.rotate_secret(session, name="website", grace=dt.timedelta(hours=1))
    stored = _raw(session, "SELECT secret FROM source_secrets ORDER BY id")
    assert len(stored) == 2
    for plaintext, raw in zip((first, second), stored, strict=True):
        assert plaintext.removeprefix("whsec_") not in raw
        assert TEST_KEYRING.decrypt(raw) == plaintext
    # What verification reads is the secret itself, newest first.
    credentials = sources.source_credentials(session, name="website")
    assert credentials is not None
    assert credentials.secrets == [second, first]
    assert sources.active_secrets(session, source_id=source.id) == [second, first]


def test_subscription_secrets_are_stored_encrypted(session: Session) -> None:
    created = notifications.add_subscription(session, url="https://hooks.example/crm", events=["*"])
    (raw,) = _raw(session, "SELECT secret FROM subscriptions")
    assert created.secret.removeprefix("whsec_") not in raw
    assert TEST_KEYRING.decrypt(raw) == created.secret
    session.expire_all()
    assert session.scalars(select(Subscription)).one().secret == created.secret


def test_mailbox_passwords_are_stored_encrypted(session: Session) -> None:
    mailboxes.add_mailbox(
        session, name="support", url="imaps://support@imap.example.com/", password=PASSWORD
    )
    (raw,) = _raw(session, "SELECT password FROM mailboxes")
    assert PASSWORD not in raw
    assert TEST_KEYRING.decrypt(raw) == PASSWORD
    session.expire_all()
    mailbox = mailboxes.get_mailbox(session, name="support")
    assert mailbox is not None
    assert mailbox.password == PASSWORD
    assert PASSWORD not in repr(mailbox)


def test_a_row_altered_in_the_database_does_not_decrypt(session: Session) -> None:
    sources.create_source(session, name="website")
    session.execute(text("UPDATE source_secrets SET secret = 'whsec_c2V0IGJ5IGhhbmQ='"))
    session.expire_all()
    with pytest.raises(UndecryptableSecret, match="does not decrypt under any key"):
        session.scalars(select(SourceSecret.secret)).all()


def test_an_engine_without_a_keyring_neither_reads_nor_writes_secrets(
    database_url: str, committed_db: Engine
) -> None:
    with make_session_factory(committed_db).begin() as session:
        sources.create_source(session, name="website")
    bare = make_engine(database_url)
    try:
        with bare.connect() as conn, pytest.raises(KeyringMissing):
            sources.source_credentials(conn, name="website")
        with (
            make_session_factory(bare).begin() as session,
            pytest.raises(StatementError) as caught,
        ):
            sources.create_source(session, name="other")
        assert isinstance(caught.value.orig, KeyringMissing)
    finally:
        bare.dispose()
