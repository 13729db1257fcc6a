"""What the e-mail parser produces: plain, frozen values with no database behind them."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from crm_core.config import Settings


class MalformedEmail(ValueError):
    """The input is not an e-mail at all (empty, no header), so there is nothing to salvage."""


@dataclasses.dataclass(frozen=True)
class MailLimits:
    """Caps that keep one hostile or absurd message from costing unbounded work or storage."""

    max_attachments: int = 20
    max_attachment_bytes: int = 25 * 1024 * 1024
    max_references: int = 50
    max_header_chars: int = 64 * 1024
    max_body_chars: int = 1_000_000
    max_parts: int = 500
    max_depth: int = 20

    @classmethod
    def from_settings(cls, settings: Settings) -> MailLimits:
        """The limits configured by ``CRM_MAX_ATTACHMENTS``, ``CRM_MAX_ATTACHMENT_BYTES``,
        ``CRM_MAX_MIME_PARTS`` and ``CRM_MAX_MIME_DEPTH``."""
        return cls(
            max_attachments=settings.max_attachments,
            max_attachment_bytes=settings.max_attachment_bytes,
            max_parts=settings.max_mime_parts,
            max_depth=settings.max_mime_depth,
        )


@dataclasses.dataclass(frozen=True)
class Attachment:
    """An attachment: what identifies it, and its decoded bytes to be kept apart.

    ``content`` goes to the blob store (``crm_core.attachments``); it is never part of
    the message's JSON form (``ParsedEmail.to_json_dict``), only its SHA-256 and size.
    """

    filename: str | None
    content_type: str
    size: int
    sha256: str
    inline: bool = False
    content: bytes = dataclasses.field(default=b"", repr=False, compare=False)

    def to_json_dict(self) -> dict[str, Any]:
        """Every field but the content."""
        return {
            "filename": self.filename,
            "content_type": self.content_type,
            "size": self.size,
            "sha256": self.sha256,
            "inline": self.inline,
        }


@dataclasses.dataclass(frozen=True)
class BouncedRecipient:
    """One recipient a delivery-status report says has failed."""

    address: str
    original_address: str | None = None
    status: str | None = None
    diagnostic: str | None = None


@dataclasses.dataclass(frozen=True)
class Bounce:
    """A delivery failure report and the recipients it names as failed."""

    recipients: tuple[BouncedRecipient, ...]
    reporting_mta: str | None = None
    # Message-ID of the message that bounced, when the report quotes its headers.
    original_message_id: str | None = None
    # An RFC 3464 report (multipart/report with a delivery-status part), not a mere
    # X-Failed-Recipients header: only a report can be verified.
    is_report: bool = False

    @property
    def addresses(self) -> tuple[str, ...]:
        return tuple(recipient.address for recipient in self.recipients)


@dataclasses.dataclass(frozen=True)
class ParsedEmail:
    """An inbound e-mail reduced to the facts the CRM acts on, from MIME or from JSON."""

    from_address: str | None
    from_name: str | None
    to: tuple[str, ...]
    cc: tuple[str, ...]
    reply_to: tuple[str, ...]
    subject: str
    date: dt.datetime | None
    message_id: str | None
    in_reply_to: tuple[str, ...]
    references: tuple[str, ...]
    text: str
    html: str | None
    attachments: tuple[Attachment, ...]
    attachments_skipped: int
    headers: dict[str, str]
    auto_generated: bool
    auto_reason: str | None
    bounce: Bounce | None
    case_token: int | None
    # What was repaired or dropped on the way, for operators; empty for clean mail.
    defects: tuple[str, ...] = ()
    # The keyed tag of the case token (``[Case #42-7kq3ab2d]``), None when bare or absent.
    case_tag: str | None = None
    # ``sha256:…`` of the message's bytes: its identity when it has no Message-ID.
    message_key: str | None = None
    # The reply alone, without quotes or signature, when an e-mail provider that received the
    # message says so (Mailgun's ``stripped-text``, Postmark's ``StrippedTextReply``).
    reply_text: str | None = None

    def to_json_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of every field (dates as ISO 8601 strings), attachments without
        their bytes."""
        data = dataclasses.asdict(dataclasses.replace(self, attachments=()))
        data["attachments"] = [attachment.to_json_dict() for attachment in self.attachments]
        data["date"] = self.date.isoformat() if self.date else None
        return data
