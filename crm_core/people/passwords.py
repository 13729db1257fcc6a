"""Password hashing with argon2id, at the parameters ``argon2-cffi`` recommends today."""

from __future__ import annotations

from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from crm_core.errors import FieldError, InvalidInput

MIN_LENGTH = 12
MAX_LENGTH = 1024  # hashing cost does not grow with length, but nobody needs more

# The library's own defaults (RFC 9106's low-memory profile): when a later release
# raises them, stored hashes are upgraded at the next sign-in (see ``needs_rehash``).
_HASHER = PasswordHasher()


def check_password(password: str) -> None:
    """Refuse a password that is too short or too long, naming the field."""
    if not MIN_LENGTH <= len(password) <= MAX_LENGTH:
        raise InvalidInput(
            [FieldError(("password",), f"must be {MIN_LENGTH} to {MAX_LENGTH} characters")]
        )


def hash_password(password: str) -> str:
    """The encoded argon2id hash of ``password`` (salt and parameters included)."""
    return _HASHER.hash(password)


def verify_password(stored: str, password: str) -> bool:
    """Whether ``password`` matches the stored hash; a malformed hash matches nothing."""
    try:
        return _HASHER.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(stored: str) -> bool:
    """Whether the stored hash was made with other parameters than today's."""
    try:
        return _HASHER.check_needs_rehash(stored)
    except InvalidHashError:
        return True


@cache
def dummy_hash() -> str:
    """A hash to verify against when the account does not exist, so that an unknown
    address costs as much time as a wrong password and reveals nothing."""
    return _HASHER.hash("not a password of anyone")
