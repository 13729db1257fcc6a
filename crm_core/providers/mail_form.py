"""An e-mail provider's form post (Mailgun routes, SendGrid Inbound Parse) read into its parts.

Mailgun posts ``application/x-www-form-urlencoded`` when a message has no
attachments and ``multipart/form-data`` when it has; SendGrid always posts
``multipart/form-data``. Unlike a web form, every value is kept as the bytes
the provider sent (SendGrid's text may be in any charset its ``charsets``
field names, a raw message is bytes), and files are kept with their name and
type. The parts are counted on the raw bytes before the standard library
builds anything (``crm_core.mail.structure``), so a post of a million empty
parts costs no more than reading it.
"""

from __future__ import annotations

import email.policy
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.parser import BytesParser
from urllib.parse import parse_qsl

from crm_core.errors import FieldError
from crm_core.mail.charsets import decode_bytes
from crm_core.mail.structure import TooComplex, scan_structure
from crm_core.payloads.json_body import media_type

URLENCODED = "application/x-www-form-urlencoded"
MULTIPART = "multipart/form-data"
MAIL_FORM_TYPES = (URLENCODED, MULTIPART)
# Beyond a message's own parts: the provider's fields (signature, envelope, charsets, …).
EXTRA_FIELDS = 100
MAX_NAME = 255


@dataclass(frozen=True)
class FilePart:
    """A file of the form: an attachment of the message."""

    name: str
    filename: str | None
    content_type: str
    data: bytes


@dataclass(frozen=True)
class MailForm:
    """The fields of a provider's form post, each value the bytes as sent, and its files."""

    values: dict[str, list[bytes]] = field(default_factory=dict)
    files: dict[str, FilePart] = field(default_factory=dict)

    def raw(self, name: str) -> bytes | None:
        """The last value of ``name``, as sent; ``None`` when absent."""
        values = self.values.get(name)
        return values[-1] if values else None

    def text(self, name: str, charset: str | None = "utf-8") -> str | None:
        """The last value of ``name`` as text in ``charset`` (never raises); ``None`` when
        absent."""
        value = self.raw(name)
        return None if value is None else decode_bytes(value, charset)

    def __contains__(self, name: object) -> bool:
        return name in self.values or name in self.files


def read_mail_form(body: bytes, content_type: str, *, max_parts: int) -> MailForm | FieldError:
    """The parts of a provider's form post (at most ``max_parts`` besides the provider's own
    fields), or what prevents reading it."""
    kind = media_type(content_type)
    try:
        if kind == URLENCODED:
            return _urlencoded(body, max_fields=max_parts + EXTRA_FIELDS)
        if kind == MULTIPART:
            return _multipart(body, content_type, max_parts=max_parts + EXTRA_FIELDS)
    except TooComplex as exc:
        return FieldError(("body",), f"the form has too many parts: {exc}"[:300], "form_invalid")
    except ValueError as exc:
        return FieldError(("body",), str(exc)[:300], "form_invalid")
    return FieldError(("content_type",), f"a form is sent as {' or '.join(MAIL_FORM_TYPES)}")


def _urlencoded(body: bytes, *, max_fields: int) -> MailForm:
    # Raises ValueError past max_fields.
    pairs = parse_qsl(body, keep_blank_values=True, max_num_fields=max_fields)
    form = MailForm()
    for name, value in pairs:
        _add(form, name.decode("utf-8", "replace"), value)
    return form


def _multipart(body: bytes, content_type: str, *, max_parts: int) -> MailForm:
    head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode("latin-1", "replace")
    # A form nests nothing: its parts are fields and files, one level deep.
    scan_structure(head + body, max_parts=max_parts, max_depth=2)
    try:
        return _parts(BytesParser(policy=email.policy.HTTP).parsebytes(head + body))
    except (TooComplex, ValueError):
        raise
    except Exception as exc:  # the parser is lenient; a failure is hostile input
        raise ValueError(f"the multipart body cannot be read: {type(exc).__name__}") from exc


def _parts(message: object) -> MailForm:
    if not isinstance(message, EmailMessage) or not message.is_multipart():
        raise ValueError("the multipart body has no parts (is the boundary right?)")
    form = MailForm()
    for part in message.iter_parts():
        if not isinstance(part, EmailMessage):
            continue
        name = part.get_param("name", header="content-disposition")
        if not isinstance(name, str):
            continue
        payload = part.get_payload(decode=True)
        data = payload if isinstance(payload, bytes) else b""
        filename = part.get_filename()
        if filename is not None:
            form.files[name] = FilePart(name, filename, part.get_content_type(), data)
        else:
            _add(form, name, data)
    if not form.values and not form.files and message.defects:
        raise ValueError("the multipart body is malformed")
    return form


def _add(form: MailForm, name: str, value: bytes) -> None:
    if not name or len(name) > MAX_NAME or not name.isprintable():
        return
    form.values.setdefault(name, []).append(value)
