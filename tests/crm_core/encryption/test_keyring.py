"""The keyring: authenticated encryption, rotation, and where its keys come from."""

from __future__ import annotations

import stat
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from crm_core.config import InvalidSettingError, MissingSettingError, Settings
from crm_core.encryption.keyring import Keyring, UndecryptableSecret

SECRET = "whsec_MfKQ9r8GKYqrTEbhBkPfETbLzm1q3cnR/wS/1w0pUcU="


def test_a_token_hides_the_plaintext_and_opens_to_it() -> None:
    keyring = Keyring([Keyring.generate_key()])
    token = keyring.encrypt(SECRET)
    assert SECRET not in token
    assert SECRET.removeprefix("whsec_") not in token
    assert keyring.decrypt(token) == SECRET
    # Randomized: the same secret never looks the same twice.
    assert keyring.encrypt(SECRET) != token


def test_an_altered_token_or_a_foreign_key_does_not_decrypt() -> None:
    keyring = Keyring([Keyring.generate_key()])
    token = keyring.encrypt(SECRET)
    altered = token[:-6] + ("A" if token[-6] != "A" else "B") + token[-5:]
    for bad in (altered, Keyring([Keyring.generate_key()]).encrypt(SECRET), SECRET, ""):
        with pytest.raises(UndecryptableSecret, match="CRM_ENCRYPTION_KEYS"):
            keyring.decrypt(bad)
        assert not keyring.can_decrypt(bad)


def test_the_newest_key_encrypts_and_every_key_decrypts() -> None:
    old, new = Keyring.generate_key(), Keyring.generate_key()
    under_old = Keyring([old]).encrypt(SECRET)
    both = Keyring([new, old])
    assert both.decrypt(under_old) == SECRET
    assert Keyring([new]).decrypt(both.encrypt(SECRET)) == SECRET
    rotated = both.rotate(under_old)
    assert Keyring([new]).decrypt(rotated) == SECRET
    with pytest.raises(UndecryptableSecret):
        Keyring([old]).decrypt(rotated)


def test_a_malformed_key_is_named_by_position_never_shown() -> None:
    keyring = Keyring([Keyring.generate_key(), "not-a-key-hunter2"])
    with pytest.raises(InvalidSettingError, match="key 2 of 2") as caught:
        keyring.encrypt(SECRET)
    assert "hunter2" not in str(caught.value)
    assert isinstance(caught.value, MissingSettingError)  # handled like a missing setting


def test_keys_are_read_from_the_setting_newest_first(tmp_path: Path) -> None:
    old, new = Keyring.generate_key(), Keyring.generate_key()
    settings = Settings(var_dir=tmp_path, encryption_keys=f" {new} , {old} ,")
    assert settings.resolved_encryption_keys() == [new, old]
    token = Keyring.from_settings(settings).encrypt(SECRET)
    assert Fernet(new).decrypt(token.encode()).decode() == SECRET
    assert not list(tmp_path.iterdir())
    assert new not in repr(settings)


def test_a_real_database_without_keys_is_refused_when_a_secret_is_used(tmp_path: Path) -> None:
    settings = Settings(
        var_dir=tmp_path, database_url="postgresql+psycopg://db/crm", encryption_keys=""
    )
    keyring = Keyring.from_settings(settings)  # a process that never touches a secret runs
    with pytest.raises(MissingSettingError, match="CRM_ENCRYPTION_KEYS must be set"):
        keyring.encrypt(SECRET)


def test_the_embedded_default_generates_one_private_key_and_keeps_it(tmp_path: Path) -> None:
    var_dir = tmp_path / "var"
    token = Keyring.from_settings(Settings(var_dir=var_dir, encryption_keys="")).encrypt(SECRET)
    again = Keyring.from_settings(Settings(var_dir=var_dir, encryption_keys=""))
    assert again.decrypt(token) == SECRET
    path = var_dir / "encryption_key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    Fernet(path.read_text().strip())  # a well-formed key
    other = Keyring.from_settings(Settings(var_dir=tmp_path / "other", encryption_keys=""))
    assert not other.can_decrypt(token)


def test_processes_racing_to_create_the_key_agree(tmp_path: Path) -> None:
    def key(_: int) -> tuple[str, ...]:
        return tuple(Settings(var_dir=tmp_path, encryption_keys="").resolved_encryption_keys())

    with ThreadPoolExecutor(max_workers=8) as pool:
        assert len(set(pool.map(key, range(32)))) == 1
