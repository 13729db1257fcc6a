"""The keys secrets at rest are encrypted under, newest first (Fernet, via MultiFernet).

Fernet is authenticated encryption (AES-128-CBC with HMAC-SHA256): a token that
was altered, or made under a key the keyring does not hold, does not decrypt.
The newest key encrypts; every key decrypts, so keys rotate without downtime:
put a new key first, re-encrypt (``crm secrets rotate-key``), then drop the old.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import TYPE_CHECKING

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from crm_core.config import InvalidSettingError

if TYPE_CHECKING:
    from crm_core.config import Settings

ENCRYPTION_KEYS_SETTING = "CRM_ENCRYPTION_KEYS"
# Decrypted values kept per keyring: every source secret, subscription and mailbox
# of a deployment, with room to spare. A decrypt costs tens of microseconds; the
# webhook intake reads a source's secrets on every cache miss.
DECRYPT_CACHE_SIZE = 4096


class UndecryptableSecret(InvalidSettingError):
    """A stored value is not a token of any key in the keyring (or was altered).

    Handled like a missing setting: the keys configured are not the ones the
    secrets were stored under, which only the operator can put right.
    """


class Keyring:
    """Fernet keys, newest first: the newest encrypts, any of them decrypts.

    Built from the settings with ``Keyring.from_settings``; the keys are read on
    first use, so a process that never touches a secret does not need them.
    """

    def __init__(self, keys: Sequence[str] | Callable[[], Sequence[str]]) -> None:
        self._load = keys if callable(keys) else (lambda: keys)
        self._fernet: MultiFernet | None = None
        self._lock = threading.Lock()
        self._decrypt = lru_cache(maxsize=DECRYPT_CACHE_SIZE)(self._decrypt_uncached)

    @classmethod
    def from_settings(cls, settings: Settings) -> Keyring:
        """The keyring of ``CRM_ENCRYPTION_KEYS`` (embedded default: ``var/encryption_key``)."""
        return cls(settings.resolved_encryption_keys)

    @staticmethod
    def generate_key() -> str:
        """A new random key, in the form ``CRM_ENCRYPTION_KEYS`` takes."""
        return Fernet.generate_key().decode("ascii")

    def _multi(self) -> MultiFernet:
        if self._fernet is None:
            with self._lock:
                if self._fernet is None:
                    self._fernet = _multi_fernet(self._load())
        return self._fernet

    def encrypt(self, plaintext: str) -> str:
        """``plaintext`` encrypted under the newest key (a fresh token each call)."""
        return self._multi().encrypt(plaintext.encode("utf-8")).decode("ascii")

    def decrypt(self, token: str) -> str:
        """The plaintext of ``token``; ``UndecryptableSecret`` if no key opens it.

        Cached by token, so reading the same row again costs a dictionary lookup.
        """
        return self._decrypt(token)

    def _decrypt_uncached(self, token: str) -> str:
        try:
            return self._multi().decrypt(token.encode("ascii")).decode("utf-8")
        except (InvalidToken, UnicodeError):
            raise UndecryptableSecret(
                f"a stored secret does not decrypt under any key in {ENCRYPTION_KEYS_SETTING}"
                " (a key removed before `crm secrets rotate-key` ran, or the database was not"
                " migrated)"
            ) from None

    def can_decrypt(self, value: str) -> bool:
        """Whether ``value`` is a token this keyring opens."""
        try:
            self.decrypt(value)
        except UndecryptableSecret:
            return False
        return True

    def rotate(self, token: str) -> str:
        """``token`` re-encrypted under the newest key; ``UndecryptableSecret`` if none opens it."""
        try:
            return self._multi().rotate(token.encode("ascii")).decode("ascii")
        except (InvalidToken, UnicodeError):
            raise UndecryptableSecret(
                f"a stored secret does not decrypt under any key in {ENCRYPTION_KEYS_SETTING}"
            ) from None


def _multi_fernet(keys: Sequence[str]) -> MultiFernet:
    if not keys:
        raise InvalidSettingError(f"{ENCRYPTION_KEYS_SETTING} holds no key")
    fernets = []
    for number, key in enumerate(keys, start=1):
        try:
            fernets.append(Fernet(key))
        except (ValueError, TypeError):
            # The key itself is never part of the message.
            raise InvalidSettingError(
                f"{ENCRYPTION_KEYS_SETTING}: key {number} of {len(keys)} is not 32 url-safe"
                " base64-encoded bytes; make one with `crm secrets generate-key`"
            ) from None
    return MultiFernet(fernets)
