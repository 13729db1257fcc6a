"""The column type of secrets at rest, and the engine's keyring it encrypts under.

A column typed ``EncryptedString``/``EncryptedText`` holds a Fernet token in the
database and the plaintext in Python: the ORM and Core statements encrypt on the
way in and decrypt on the way out, so no service can store a secret in clear
by forgetting a call. The keyring belongs to the engine (``make_engine(...,
keyring=...)``): whoever holds an engine built with it reads plaintext, and an
engine built without one refuses to read or write a secret rather than guess.

Encryption is randomized, so such a column cannot be searched by value.
"""

from __future__ import annotations

import weakref
from typing import Any

from sqlalchemy import Dialect, Engine, String, Text, TypeDecorator

from crm_core.encryption.keyring import Keyring

_KEYRINGS: weakref.WeakKeyDictionary[Dialect, Keyring] = weakref.WeakKeyDictionary()


class KeyringMissing(RuntimeError):
    """A secret column was used on an engine made without a keyring."""


def bind_keyring(engine: Engine, keyring: Keyring) -> None:
    """Make ``engine`` encrypt and decrypt secret columns with ``keyring``."""
    _KEYRINGS[engine.dialect] = keyring


def keyring_of(dialect: Dialect) -> Keyring:
    """The keyring of the engine that owns ``dialect``; ``KeyringMissing`` without one."""
    keyring = _KEYRINGS.get(dialect)
    if keyring is None:
        raise KeyringMissing(
            "this engine has no keyring: build it with "
            "make_engine(url, keyring=Keyring.from_settings(settings))"
        )
    return keyring


class EncryptedString(TypeDecorator[str]):
    """A secret stored as a Fernet token in a VARCHAR; plaintext in Python."""

    impl = String
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        return keyring_of(dialect).encrypt(value)

    def process_result_value(self, value: Any, dialect: Dialect) -> str | None:
        if value is None:
            return None
        return keyring_of(dialect).decrypt(value)


class EncryptedText(EncryptedString):
    """A secret stored as a Fernet token in a TEXT column; plaintext in Python."""

    impl = Text
    cache_ok = True
