"""crm secrets generate-key and rotate-key, against the test database."""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from cryptography.fernet import Fernet
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from crm_cli import encryption as cli_encryption
from crm_cli import session as cli_session
from crm_cli.main import cli
from crm_core.config import Settings
from crm_core.db import make_engine, make_session_factory
from crm_core.encryption.keyring import Keyring
from crm_core.ingestion import services
from crm_core.notifications.models import Subscription
from crm_core.notifications.services import add_subscription
from tests.keyring import TEST_ENCRYPTION_KEYS


def _crm(monkeypatch: pytest.MonkeyPatch, settings: Settings, *args: str):  # type: ignore[no-untyped-def]
    monkeypatch.setattr(cli_session, "get_settings", lambda: settings)
    monkeypatch.setattr(cli_encryption, "get_settings", lambda: settings)
    return CliRunner().invoke(cli, list(args))


def test_generate_key_prints_a_usable_key(monkeypatch: pytest.MonkeyPatch) -> None:
    result = _crm(monkeypatch, Settings(), "secrets", "generate-key")
    assert result.exit_code == 0, result.output
    Fernet(result.output.strip())


def test_rotate_key_moves_every_secret_to_the_newest_key(
    database_url: str, committed_db: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    with make_session_factory(committed_db).begin() as session:
        secret = _add_source_and_subscription(session)
    new = Keyring.generate_key()
    settings = Settings(
        database_url=database_url,
        broker_url="memory://",
        encryption_keys=f"{new},{TEST_ENCRYPTION_KEYS}",
    )
    result = _crm(monkeypatch, settings, "secrets", "rotate-key")
    assert result.exit_code == 0, result.output
    assert "source_secrets.secret\t1 re-encrypted" in result.output
    assert result.output.splitlines()[-1] == "2 secrets now under the newest key"

    # The old key can go: an engine holding only the new one reads everything.
    engine = make_engine(database_url, keyring=Keyring([new]))
    try:
        with make_session_factory(engine)() as session:
            credentials = services.source_credentials(session, name="website")
            assert credentials is not None
            assert credentials.secrets == [secret]
            assert session.scalars(select(Subscription.secret)).one().startswith("whsec_")
    finally:
        engine.dispose()


def test_rotate_key_without_the_old_key_changes_nothing_and_says_why(
    database_url: str, committed_db: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    with make_session_factory(committed_db).begin() as session:
        secret = _add_source_and_subscription(session)
    settings = Settings(
        database_url=database_url, broker_url="memory://", encryption_keys=Keyring.generate_key()
    )
    result = _crm(monkeypatch, settings, "secrets", "rotate-key")
    assert result.exit_code == 1
    assert "does not decrypt under any key in CRM_ENCRYPTION_KEYS" in result.output
    assert "Traceback" not in result.output
    with committed_db.connect() as conn:
        credentials = services.source_credentials(conn, name="website")
    assert credentials is not None
    assert credentials.secrets == [secret]


def test_a_real_database_without_keys_is_one_line_without_the_secret(
    database_url: str, committed_db: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = Settings(database_url=database_url, broker_url="memory://", encryption_keys="")
    result = _crm(monkeypatch, settings, "sources", "add", "website")
    assert result.exit_code == 1
    assert result.output == "Error: CRM_ENCRYPTION_KEYS must be set when CRM_DATABASE_URL is\n"


def _add_source_and_subscription(session: Session) -> str:
    _, secret = services.create_source(session, name="website")
    add_subscription(session, url="https://hooks.example/crm", events=["*"])
    return secret
