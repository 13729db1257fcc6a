"""Content-Transfer-Encodings undone leniently, as mail readers do."""

from __future__ import annotations

import binascii
import quopri
import re

_NOT_BASE64 = re.compile(rb"[^A-Za-z0-9+/]")


def lenient_b64decode(data: bytes | str) -> bytes:
    """Decode base64, ignoring junk characters, bad padding and a dangling last character."""
    raw = data.encode("ascii", errors="ignore") if isinstance(data, str) else data
    clean = _NOT_BASE64.sub(b"", raw)
    clean = clean[: len(clean) - len(clean) % 4 if len(clean) % 4 == 1 else len(clean)]
    try:
        return binascii.a2b_base64(clean + b"=" * (-len(clean) % 4))
    except binascii.Error:  # unreachable for cleaned input; kept as a guard
        return b""


def decode_transfer(text: str, encoding: str) -> bytes:
    """The bytes of ``text`` under a base64 or quoted-printable transfer encoding."""
    if encoding == "base64":
        return lenient_b64decode(text)
    return quopri.decodestring(text.encode("ascii", errors="ignore"))
