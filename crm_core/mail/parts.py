"""Safe access to a MIME part's type, parameters and decoded payload.

The standard library parses these headers lazily and may fail on hostile values;
every accessor here degrades to a sensible default instead.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from email.message import Message

DEFAULT_TYPE = "application/octet-stream"


def content_type(part: Message) -> str:
    """The lowercase ``maintype/subtype``; ``text/plain`` when missing, as RFC 2045 says."""
    try:
        value = part.get_content_type()
    except Exception:  # the stdlib's lazy header parse can fail on hostile values
        return DEFAULT_TYPE
    return value.lower() if "/" in value else DEFAULT_TYPE


def content_param(part: Message, name: str) -> str | None:
    """A Content-Type parameter (e.g. ``charset``, ``report-type``), or None."""
    with contextlib.suppress(Exception):
        value = part.get_param(name)
        if isinstance(value, tuple):  # an RFC 2231 value: (charset, language, text)
            value = value[2]
        return str(value).strip() if value is not None else None
    return None


def disposition(part: Message) -> str | None:
    """``attachment``, ``inline`` or None."""
    with contextlib.suppress(Exception):
        value = part.get_content_disposition()
        return value.lower() if value else None
    return None


def is_inline(part: Message) -> bool:
    """Shown in the body (``inline``, or referenced by Content-ID without a disposition)."""
    shown = disposition(part)
    return shown == "inline" or (shown is None and "content-id" in part)


def filename(part: Message) -> str | None:
    """The declared file name, or None."""
    with contextlib.suppress(Exception):
        value = part.get_filename()
        return str(value) if value else None
    return None


def payload_bytes(part: Message) -> bytes:
    """The transfer-decoded payload (base64 and quoted-printable undone, leniently)."""
    with contextlib.suppress(Exception):
        value = part.get_payload(decode=True)
        if isinstance(value, bytes):
            return value
    with contextlib.suppress(Exception):
        raw = part.get_payload()
        if isinstance(raw, str):
            return raw.encode("utf-8", errors="surrogateescape")
    return b""


def subparts(part: Message) -> list[Message]:
    """The parts of a multipart or ``message/*`` part; empty for a leaf."""
    with contextlib.suppress(Exception):
        payload = part.get_payload()
        if isinstance(payload, list):
            return [sub for sub in payload if isinstance(sub, Message)]
    return []


def walk(
    root: Message, *, max_parts: int, max_depth: int, into_messages: bool = True
) -> Iterator[tuple[Message, int]]:
    """Every part with its depth, depth-first, bounded in count and depth.

    With ``into_messages=False`` an attached ``message/*`` part is yielded but not
    entered: a forwarded e-mail is an attachment, not part of this one's body.
    """
    stack: list[tuple[Message, int]] = [(root, 0)]
    seen = 0
    while stack and seen < max_parts:
        part, depth = stack.pop()
        seen += 1
        yield part, depth
        if depth >= max_depth:
            continue
        if depth > 0 and not into_messages and content_type(part).startswith("message/"):
            continue
        stack.extend((sub, depth + 1) for sub in reversed(subparts(part)))
