"""Revision 0011 encrypts the secrets stored before it, and its downgrade decrypts them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from crm_core import migrate
from crm_core.db import make_engine
from crm_core.encryption.keyring import Keyring
from crm_core.ingestion.services import source_credentials
from tests.keyring import TEST_KEYRING
from tests.services import scratch_postgres_database

SIGNING = "whsec_MfKQ9r8GKYqrTEbhBkPfETbLzm1q3cnR/wS/1w0pUcU="
SUBSCRIPTION = "whsec_c3Vic2NyaXB0aW9uIHNlY3JldCAzMiBieXRlcyE="
PASSWORD = "imap password, in clear before 0011"
RAW = (
    "SELECT (SELECT secret FROM source_secrets), (SELECT secret FROM subscriptions),"
    " (SELECT password FROM mailboxes)"
)


@pytest.fixture(params=["sqlite", "postgresql"])
def database_at_0007(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'old.sqlite3'}"
        migrate.upgrade(url, revision="0007")
        yield url
        return
    request.getfixturevalue("postgres_available")
    with scratch_postgres_database("crm_0011") as url:
        migrate.upgrade(url, revision="0007")
        yield url


def _seed_plaintext(url: str) -> None:
    engine = make_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO sources (id, name, enabled) VALUES (1, 'web', true)"))
            conn.execute(
                text(
                    "INSERT INTO source_secrets (source_id, secret, created_at)"
                    " VALUES (1, :secret, CURRENT_TIMESTAMP)"
                ),
                {"secret": SIGNING},
            )
            conn.execute(
                text(
                    "INSERT INTO subscriptions (url, events, secret, enabled)"
                    " VALUES ('https://hooks.example/', '[\"*\"]', :secret, true)"
                ),
                {"secret": SUBSCRIPTION},
            )
            conn.execute(
                text(
                    "INSERT INTO mailboxes (name, source_id, host, port, security, username,"
                    " password, folder, enabled, last_uid) VALUES ('support', 1, 'h', 993, 'tls',"
                    " 'u', :password, 'INBOX', true, 0)"
                ),
                {"password": PASSWORD},
            )
    finally:
        engine.dispose()


def _raw(url: str) -> tuple[str, ...]:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return tuple(conn.execute(text(RAW)).one())
    finally:
        engine.dispose()


def test_existing_secrets_are_encrypted_and_decrypted_back_on_downgrade(
    database_at_0007: str,
) -> None:
    _seed_plaintext(database_at_0007)
    # Without a keyring given, the migration takes the configured keys, as the app does.
    migrate.upgrade(database_at_0007, revision="0011")
    stored = _raw(database_at_0007)
    for plaintext, token in zip((SIGNING, SUBSCRIPTION, PASSWORD), stored, strict=True):
        assert plaintext not in token
        assert TEST_KEYRING.decrypt(token) == plaintext

    # Today's code reads them back, once the later revisions have run too.
    migrate.upgrade(database_at_0007, keyring=TEST_KEYRING)
    engine = make_engine(database_at_0007, keyring=TEST_KEYRING)
    try:
        with engine.connect() as conn:
            credentials = source_credentials(conn, name="web")
        assert credentials is not None
        assert credentials.secrets == [SIGNING]
    finally:
        engine.dispose()

    migrate.downgrade(database_at_0007, revision="0007", keyring=TEST_KEYRING)
    assert _raw(database_at_0007) == (SIGNING, SUBSCRIPTION, PASSWORD)


def test_rows_already_encrypted_are_left_alone(database_at_0007: str) -> None:
    _seed_plaintext(database_at_0007)
    keyring = Keyring([Keyring.generate_key()])
    engine = make_engine(database_at_0007)
    try:
        with engine.begin() as conn:
            conn.execute(
                text("UPDATE mailboxes SET password = :token"),
                {"token": keyring.encrypt(PASSWORD)},
            )
    finally:
        engine.dispose()
    migrate.upgrade(database_at_0007, revision="0011", keyring=keyring)
    stored = _raw(database_at_0007)
    assert [keyring.decrypt(token) for token in stored] == [SIGNING, SUBSCRIPTION, PASSWORD]
