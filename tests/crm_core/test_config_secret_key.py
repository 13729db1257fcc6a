"""The signing secret: configured in production, generated once for the embedded default."""

from __future__ import annotations

import stat
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from crm_core.config import MissingSecretKeyError, Settings


def test_a_configured_key_is_used_as_is(tmp_path: Path) -> None:
    settings = Settings(var_dir=tmp_path, secret_key="configured", database_url="sqlite://")
    assert settings.resolved_secret_key() == "configured"
    assert not (tmp_path / "secret_key").exists()


def test_a_real_database_without_a_key_is_refused(tmp_path: Path) -> None:
    settings = Settings(var_dir=tmp_path, database_url="postgresql+psycopg://db/crm")
    with pytest.raises(MissingSecretKeyError, match="CRM_SECRET_KEY"):
        settings.resolved_secret_key()


def test_the_embedded_default_generates_one_private_key_and_keeps_it(tmp_path: Path) -> None:
    var_dir = tmp_path / "var"
    first = Settings(var_dir=var_dir).resolved_secret_key()
    again = Settings(var_dir=var_dir).resolved_secret_key()
    assert first == again
    assert len(first) >= 32
    path = var_dir / "secret_key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in var_dir.iterdir()] == ["secret_key"]
    assert Settings(var_dir=tmp_path / "other").resolved_secret_key() != first


def test_processes_racing_to_create_the_key_agree(tmp_path: Path) -> None:
    with ThreadPoolExecutor(max_workers=8) as pool:
        keys = set(pool.map(lambda _: Settings(var_dir=tmp_path).resolved_secret_key(), range(32)))
    assert len(keys) == 1


def test_an_empty_key_file_is_an_error_not_an_empty_key(tmp_path: Path) -> None:
    (tmp_path / "secret_key").write_text("")
    with pytest.raises(MissingSecretKeyError, match="empty"):
        Settings(var_dir=tmp_path).resolved_secret_key()


def test_the_key_is_not_shown_in_the_settings_repr(tmp_path: Path) -> None:
    settings = Settings(var_dir=tmp_path, secret_key="hunter2")
    assert "hunter2" not in repr(settings)


def test_mail_defaults_to_an_outbox_directory(tmp_path: Path) -> None:
    settings = Settings(var_dir=tmp_path)
    assert settings.resolved_mail_url() == f"file://{(tmp_path / 'outbox').resolve()}"
    assert Settings(mail_url="console://").resolved_mail_url() == "console://"
