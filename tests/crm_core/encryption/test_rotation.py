"""Key rotation: every stored secret moves to the newest key, or none does."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from crm_core.encryption.keyring import Keyring, UndecryptableSecret
from crm_core.encryption.services import encrypted_columns, rotate_key
from crm_core.ingestion import services as sources
from crm_core.mailboxes import services as mailboxes
from crm_core.models import metadata
from crm_core.notifications import services as notifications
from tests.keyring import TEST_ENCRYPTION_KEYS, TEST_KEYRING

RAW = {
    "source_secrets.secret": "SELECT secret FROM source_secrets ORDER BY id",
    "subscriptions.secret": "SELECT secret FROM subscriptions ORDER BY id",
    "mailboxes.password": "SELECT password FROM mailboxes ORDER BY id",
}


def _stored(session: Session) -> dict[str, list[str]]:
    return {name: list(session.execute(text(sql)).scalars()) for name, sql in RAW.items()}


def _seed(session: Session) -> dict[str, list[str]]:
    _, first = sources.create_source(session, name="website")
    second = sources.rotate_secret(session, name="website", grace=dt.timedelta(hours=1))
    subscription = notifications.add_subscription(
        session, url="https://hooks.example/crm", events=["*"]
    )
    mailboxes.add_mailbox(
        session, name="support", url="imaps://support@imap.example.com/", password="pw"
    )
    return {
        "source_secrets.secret": [first, second],
        "subscriptions.secret": [subscription.secret],
        "mailboxes.password": ["pw"],
    }


def test_every_secret_column_is_found_by_its_type() -> None:
    assert sorted(f"{c.table.name}.{c.name}" for c in encrypted_columns(metadata)) == sorted(RAW)


def test_rotation_leaves_every_row_readable_under_the_new_key_alone(session: Session) -> None:
    plaintexts = _seed(session)
    new = Keyring.generate_key()
    counts = rotate_key(
        session, keyring=Keyring([new, *TEST_ENCRYPTION_KEYS.split(",")]), metadata=metadata
    )
    assert counts == {name: len(values) for name, values in plaintexts.items()}
    only_new = Keyring([new])
    stored = _stored(session)
    for name, values in plaintexts.items():
        assert [only_new.decrypt(token) for token in stored[name]] == values
        assert not any(TEST_KEYRING.can_decrypt(token) for token in stored[name])


def test_a_secret_no_key_opens_stops_the_rotation_naming_its_row(session: Session) -> None:
    _seed(session)
    foreign = Keyring([Keyring.generate_key()]).encrypt("lost")
    session.execute(text("UPDATE subscriptions SET secret = :token"), {"token": foreign})
    new = Keyring.generate_key()
    with pytest.raises(UndecryptableSecret, match=r"^subscriptions \d+: "):
        rotate_key(
            session, keyring=Keyring([new, *TEST_ENCRYPTION_KEYS.split(",")]), metadata=metadata
        )
