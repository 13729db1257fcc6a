"""An e-mail provider's parsed message put back together as one RFC 5322 message.

Mailgun, SendGrid and Postmark can post a message already taken apart: its
header fields as a list, its text and HTML bodies, its attachments. ``compose``
puts them back into one MIME message (the original header fields in their
order, then a body of our making: text and HTML as alternatives, attachments
beside them), so the message takes exactly the path of one read from a
mailbox: the same parser, limits, threading by Message-ID, In-Reply-To and
References, duplicate detection and attachments. What the provider adds that a
message does not carry (its reply-stripped text) travels beside it, in
``InboundMail``.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage

from crm_core.mail.bodies import safe_filename
from crm_core.mail.charsets import clean_text

# The body is ours: the original's description of its own body no longer applies.
BODY_FIELDS = frozenset(
    {
        "content-type",
        "content-transfer-encoding",
        "mime-version",
        "content-disposition",
        "content-length",
    }
)
_FIELD_NAME = re.compile(r"^[!-9;-~]{1,255}$")  # RFC 5322 ftext: printable ASCII but ':'
# RFC 6838 type and subtype names.
_TYPE_NAME = re.compile(r"^[a-z0-9][a-z0-9!#$&^_.+-]{0,126}$")
_LINE_BREAKS = re.compile(r"\r\n[ \t]*|\r[ \t]*|\n[ \t]*")
MAX_FIELDS = 1000


@dataclass(frozen=True)
class Part:
    """An attachment as the provider gave it."""

    content: bytes
    content_type: str
    filename: str | None = None
    content_id: str | None = None


@dataclass(frozen=True)
class InboundMail:
    """A message a provider posted, as RFC 5322 bytes, and what the provider says beside it."""

    raw: bytes
    # The provider's text of the reply alone, quotes and signature stripped; None: not given.
    reply_text: str | None = None


def compose(
    fields: Iterable[tuple[str, str]],
    *,
    text: str | None,
    html: str | None,
    attachments: Sequence[Part] = (),
) -> bytes:
    """One MIME message of the original header ``fields`` (name, value, in order), the bodies
    and the attachments."""
    head = b"".join(_field(name, value) for name, value in _kept(fields))
    text = clean_text(text) if text is not None else None
    html = clean_text(html) if html is not None else None
    return head + _body(text, html, attachments, seed=_digest(head, text, html, attachments))


def _digest(head: bytes, text: str | None, html: str | None, attachments: Sequence[Part]) -> str:
    """A digest of everything composed: the same post is composed to the same bytes (its
    boundaries too), so a replayed message without Message-ID has the same key."""
    digest = hashlib.sha256(head)
    for piece in (text, html):
        digest.update(b"\0" + (piece or "").encode())
    for part in attachments:
        digest.update(b"\0" + part.content)
    return digest.hexdigest()[:32]


def _kept(fields: Iterable[tuple[str, str]]) -> Iterable[tuple[str, str]]:
    for count, (name, value) in enumerate(fields):
        if count >= MAX_FIELDS:
            return
        if _FIELD_NAME.match(name) and name.lower() not in BODY_FIELDS:
            yield name, value


def _field(name: str, value: str) -> bytes:
    # One line per field, whatever folding it came with: nothing it holds can start a new one.
    # 8-bit values (a provider's decoded ones) are written as UTF-8, which the parser reads.
    unfolded = _LINE_BREAKS.sub(" ", clean_text(value)).strip()
    return f"{name}: {unfolded}\r\n".encode()


def _body(text: str | None, html: str | None, attachments: Sequence[Part], *, seed: str) -> bytes:
    body = EmailMessage(policy=policy.SMTP)
    if text is not None or html is None:
        body.set_content(text or "")
        if html is not None:
            body.add_alternative(html, subtype="html")
    else:
        body.set_content(html, subtype="html")
    for part in attachments:
        maintype, _, subtype = part.content_type.split(";", 1)[0].strip().lower().partition("/")
        if not _TYPE_NAME.match(maintype) or not _TYPE_NAME.match(subtype):
            maintype, subtype = "application", "octet-stream"
        body.add_attachment(
            part.content,
            maintype=maintype,
            subtype=subtype,
            filename=safe_filename(part.filename),
            disposition="inline" if part.content_id else "attachment",
            cid=_content_id(part.content_id),
        )
    if "MIME-Version" not in body:
        body["MIME-Version"] = "1.0"
    for number, node in enumerate(body.walk()):
        if node.is_multipart():
            node.set_boundary(f"=_{seed}.{number}")
    return body.as_bytes()


def _content_id(value: str | None) -> str | None:
    if not value:
        return None
    bare = clean_text(value).strip().strip("<>")
    if not bare or not bare.isascii() or not bare.isprintable() or any(c in bare for c in "<> "):
        return None
    return f"<{bare}>"
