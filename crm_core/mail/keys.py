"""A stable key for a message from its bytes, for mail that has no Message-ID.

Without a Message-ID nothing else says that two deliveries are one message: a
replayed event or a message fetched again after a UIDVALIDITY change would open
a second case. The key is a SHA-256 of the message with line endings unified and
the trace fields (``Received``, ``Return-Path``, ``Delivered-To``…) that each
delivery adds left out, so the same message keys the same however it came.
"""

from __future__ import annotations

import hashlib
import json
import re

from crm_core.payloads.schemas import EmailPayload

PREFIX = "sha256:"
_TRACE_FIELDS = frozenset(
    {b"received", b"return-path", b"delivered-to", b"x-original-to", b"x-received"}
)
_LINE = re.compile(rb"\r\n|\r|\n")


def message_key(raw: bytes) -> str:
    """``sha256:<hex>`` of the normalized message; linear in its size."""
    head, separator, body = _split(raw)
    digest = hashlib.sha256()
    keep = False
    for line in _LINE.split(head):
        if line[:1] in (b" ", b"\t"):  # a folded continuation belongs to the field above
            if keep:
                digest.update(line.rstrip() + b"\r\n")
            continue
        name = line.split(b":", 1)[0].strip().lower()
        keep = name not in _TRACE_FIELDS
        if keep:
            digest.update(line.rstrip() + b"\r\n")
    digest.update(separator)
    digest.update(_LINE.sub(b"\r\n", body).rstrip())
    return PREFIX + digest.hexdigest()


def json_message_key(payload: EmailPayload) -> str:
    """``sha256:<hex>`` of an e-mail delivered as JSON, from its canonical form."""
    canonical = json.dumps(
        payload.model_dump(mode="json", by_alias=True), sort_keys=True, separators=(",", ":")
    )
    return PREFIX + hashlib.sha256(canonical.encode()).hexdigest()


def _split(raw: bytes) -> tuple[bytes, bytes, bytes]:
    match = re.search(rb"\r?\n\r?\n", raw)
    if match is None:
        return raw, b"", b""
    return raw[: match.start()], b"\r\n\r\n", raw[match.end() :]
