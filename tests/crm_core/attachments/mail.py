"""E-mails with attachments, built with the standard library, for the attachment tests."""

from __future__ import annotations

import uuid
from email.message import EmailMessage

PDF = b"%PDF-1.4\n" + bytes(range(256)) * 64 + b"\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + bytes(reversed(range(256))) * 8


def message_with(
    *files: tuple[str, str, bytes],
    sender: str = "ann@customer.example.com",
    to: str = "support@acme.test",
    inline_png: bytes | None = None,
    message_id: str | None = None,
) -> bytes:
    """A message from ``sender`` carrying ``files`` (name, type, bytes), perhaps an inline
    image referenced by Content-ID."""
    message = EmailMessage()
    message["From"] = f"Ann <{sender}>"
    message["To"] = to
    message["Subject"] = "Invoice attached"
    message["Message-ID"] = message_id or f"<{uuid.uuid4().hex}@customer.example.com>"
    message.set_content("Please see the attached files.")
    if inline_png is not None:
        message.add_alternative('<p>Logo: <img src="cid:logo@x"></p>', subtype="html")
        html = message.get_payload()[1]
        html.add_related(inline_png, maintype="image", subtype="png", cid="<logo@x>")
    for name, content_type, content in files:
        maintype, subtype = content_type.split("/")
        message.add_attachment(content, maintype=maintype, subtype=subtype, filename=name)
    return message.as_bytes()
