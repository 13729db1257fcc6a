"""Standard Webhooks v1: signing secrets, signatures and their verification.

A signature is ``v1,`` + base64(HMAC-SHA256(secret, "{id}.{timestamp}.{body}")),
where the secret is the base64 after ``whsec_``. The ``webhook-signature``
header may carry several space-separated signatures (one per secret during a
rotation); any valid one passes. Pure functions: no database, no clock unless
none is given.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets
import time
from collections.abc import Iterable
from functools import lru_cache

SECRET_PREFIX = "whsec_"  # noqa: S105 - a format marker, not a secret
SECRET_BYTES = 32
DEFAULT_TOLERANCE_SECONDS = 300
# Bounds on what a sender may put in the headers, so a hostile header costs nothing.
MAX_SIGNATURE_HEADER = 4096
MAX_SIGNATURES = 16
MAX_WEBHOOK_ID = 255
_WEBHOOK_ID = re.compile(r"^[\x21-\x7e]+$")
_TIMESTAMP = re.compile(r"^[0-9]{1,12}$")


class SignatureError(Exception):
    """The request is not signed by the source: a missing, malformed or wrong signature."""


def generate_secret() -> str:
    """A new signing secret: ``whsec_`` + base64 of 32 random bytes."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode("ascii")


@lru_cache(maxsize=1024)
def decode_secret(secret: str) -> bytes:
    """The HMAC key of ``secret`` (with or without ``whsec_``; padding optional).

    Cached: every webhook verifies against its source's secrets.
    """
    encoded = secret.removeprefix(SECRET_PREFIX)
    try:
        key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError("a signing secret must be base64 after 'whsec_'") from exc
    if not key:
        raise ValueError("a signing secret may not be empty")
    return key


def sign(secret: str, *, msg_id: str, timestamp: int, body: bytes) -> str:
    """The ``v1,<base64>`` signature of one message."""
    digest = _digest(decode_secret(secret), msg_id=msg_id, timestamp=str(timestamp), body=body)
    return "v1," + base64.b64encode(digest).decode("ascii")


def verify(
    secrets_: Iterable[str],
    *,
    msg_id: str | None,
    timestamp: str | None,
    signature: str | None,
    body: bytes,
    now: float | None = None,
    tolerance: int = DEFAULT_TOLERANCE_SECONDS,
) -> None:
    """Raise ``SignatureError`` unless one signature in the header matches one secret."""
    msg_id = _check_msg_id(msg_id)
    sent_at = _check_timestamp(
        timestamp, now=time.time() if now is None else now, tolerance=tolerance
    )
    candidates = _parse_signatures(signature)
    for secret in secrets_:
        expected = _digest(decode_secret(secret), msg_id=msg_id, timestamp=sent_at, body=body)
        # Compare against every candidate (no early exit) in constant time each.
        matched = False
        for candidate in candidates:
            matched |= hmac.compare_digest(expected, candidate)
        if matched:
            return
    raise SignatureError("no signature matches")


def _digest(key: bytes, *, msg_id: str, timestamp: str, body: bytes) -> bytes:
    signed = msg_id.encode("ascii") + b"." + timestamp.encode("ascii") + b"." + body
    return hmac.new(key, signed, hashlib.sha256).digest()


def _check_msg_id(msg_id: str | None) -> str:
    if not msg_id:
        raise SignatureError("missing webhook-id header")
    if len(msg_id) > MAX_WEBHOOK_ID or not _WEBHOOK_ID.match(msg_id):
        raise SignatureError("webhook-id must be 1-255 printable ASCII characters")
    return msg_id


def _check_timestamp(value: str | None, *, now: float, tolerance: int) -> str:
    if not value:
        raise SignatureError("missing webhook-timestamp header")
    if not _TIMESTAMP.match(value):
        raise SignatureError("webhook-timestamp must be whole seconds since the epoch")
    if abs(int(value) - now) > tolerance:
        raise SignatureError(f"webhook-timestamp is more than {tolerance} seconds from now")
    return value


def _parse_signatures(header: str | None) -> list[bytes]:
    """The v1 signatures in the header; other versions are skipped, as the spec says."""
    if not header:
        raise SignatureError("missing webhook-signature header")
    if len(header) > MAX_SIGNATURE_HEADER:
        raise SignatureError("webhook-signature header is too long")
    entries = header.split()
    if len(entries) > MAX_SIGNATURES:
        raise SignatureError(f"more than {MAX_SIGNATURES} signatures")
    found = []
    for entry in entries:
        version, comma, encoded = entry.partition(",")
        if not comma:
            raise SignatureError("a signature must look like 'v1,<base64>'")
        if version != "v1":
            continue
        try:
            found.append(base64.b64decode(encoded, validate=True))
        except (binascii.Error, ValueError):
            raise SignatureError("a signature is not valid base64") from None
    if not found:
        raise SignatureError("no v1 signature")
    return found
