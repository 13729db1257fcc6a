"""The readable body and the attachments of a MIME message."""

from __future__ import annotations

import dataclasses
import hashlib
from email import policy
from email.message import Message

from crm_core.mail import parts
from crm_core.mail.charsets import clean_text, decode_bytes, known_codec
from crm_core.mail.parsed import Attachment, MailLimits

_BODY_TYPES = frozenset({"text/plain", "text/html"})
# Parts of a delivery report that are data for the bounce parser, not files.
_REPORT_TYPES = frozenset({"message/delivery-status", "message/global-delivery-status"})
MAX_FILENAME_CHARS = 255


@dataclasses.dataclass
class Bodies:
    """What the body walk collected; turned into ``ParsedEmail`` fields by the parser."""

    texts: list[str] = dataclasses.field(default_factory=list)
    htmls: list[str] = dataclasses.field(default_factory=list)
    attachments: list[Attachment] = dataclasses.field(default_factory=list)
    attachments_skipped: int = 0
    attachment_bytes: int = 0
    defects: list[str] = dataclasses.field(default_factory=list)


def collect_bodies(message: Message, *, limits: MailLimits) -> Bodies:
    """Walk the message once: text and HTML bodies, then every other part as an attachment."""
    bodies = Bodies()
    for part, depth in parts.walk(
        message, max_parts=limits.max_parts, max_depth=limits.max_depth, into_messages=False
    ):
        ctype = parts.content_type(part)
        if ctype in _REPORT_TYPES:
            continue
        if ctype.startswith("message/") and depth > 0:
            _add_part_attachment(bodies, part, _serialized(part), limits=limits)
        elif parts.subparts(part):
            continue  # a container: its children come next
        elif _is_body(part, ctype):
            _add_body(bodies, part, ctype)
        else:
            _add_part_attachment(bodies, part, parts.payload_bytes(part), limits=limits)
    return bodies


def _is_body(part: Message, ctype: str) -> bool:
    if parts.disposition(part) == "attachment" or parts.filename(part):
        return False
    # A multipart without a usable boundary arrives as one leaf: its text is the body.
    return ctype in _BODY_TYPES or ctype.startswith("multipart/")


def _add_body(bodies: Bodies, part: Message, ctype: str) -> None:
    charset = parts.content_param(part, "charset")
    if charset and known_codec(charset) is None:
        bodies.defects.append(f"unknown charset {charset[:40]!r}")
    text = decode_bytes(parts.payload_bytes(part), charset)
    (bodies.htmls if ctype == "text/html" else bodies.texts).append(text)


def add_attachment(
    bodies: Bodies,
    *,
    filename: str | None,
    content_type: str,
    content: bytes,
    inline: bool,
    limits: MailLimits,
) -> None:
    """Record an attachment, or count it as skipped when it would pass a cap."""
    total = bodies.attachment_bytes + len(content)
    if len(bodies.attachments) >= limits.max_attachments or total > limits.max_attachment_bytes:
        bodies.attachments_skipped += 1
        return
    bodies.attachment_bytes = total
    bodies.attachments.append(
        Attachment(
            filename=safe_filename(filename),
            content_type=content_type,
            size=len(content),
            sha256=hashlib.sha256(content).hexdigest(),
            inline=inline,
            content=content,
        )
    )


def _add_part_attachment(
    bodies: Bodies, part: Message, content: bytes, *, limits: MailLimits
) -> None:
    add_attachment(
        bodies,
        filename=parts.filename(part),
        content_type=parts.content_type(part),
        content=content,
        inline=parts.is_inline(part),
        limits=limits,
    )


def safe_filename(name: str | None) -> str | None:
    """A file name with no directory part or control characters, bounded in length."""
    if not name:
        return None
    base = clean_text(name).replace("\\", "/").rsplit("/", 1)[-1].strip()
    if base in {"", ".", ".."}:
        return None
    return base[:MAX_FILENAME_CHARS]


def _serialized(part: Message) -> bytes:
    # An attached message's bytes, as its recipient would save it to a .eml file.
    inner = parts.subparts(part)
    try:
        if inner:
            return inner[0].as_bytes(policy=policy.compat32)
    except Exception:  # re-serializing a hostile message can fail; its payload is enough
        return b""
    return parts.payload_bytes(part)
