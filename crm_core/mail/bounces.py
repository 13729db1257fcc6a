"""Delivery-status reports (RFC 3464): which recipients failed, and why."""

from __future__ import annotations

import email
from email import policy
from email.message import Message

from crm_core.mail import parts
from crm_core.mail.addresses import addresses_only, normalize_address
from crm_core.mail.charsets import clean_text, decode_bytes
from crm_core.mail.message_ids import normalize_message_id
from crm_core.mail.parsed import Bounce, BouncedRecipient, MailLimits
from crm_core.mail.transfer_encoding import decode_transfer

_STATUS_TYPES = frozenset({"message/delivery-status", "message/global-delivery-status"})
_QUOTED_TYPES = frozenset(
    {"message/rfc822", "message/global", "text/rfc822-headers", "message/global-headers"}
)
MAX_DIAGNOSTIC_CHARS = 1000
_ENCODINGS = frozenset({"base64", "quoted-printable"})

Fields = dict[str, str]


def find_bounce(
    message: Message, *, failed_recipients_header: str | None, limits: MailLimits
) -> Bounce | None:
    """The bounce a message reports, or None when it reports no failed recipient.

    A delivery-status part is the standard; Exim's ``X-Failed-Recipients`` header is the
    fallback for non-standard bounces (recorded, but never trusted: ``is_report`` False).
    """
    blocks: list[Fields] = []
    original_id: str | None = None
    for part, _ in parts.walk(message, max_parts=limits.max_parts, max_depth=limits.max_depth):
        ctype = parts.content_type(part)
        if ctype in _STATUS_TYPES and not blocks:
            blocks = status_blocks(part)
        elif ctype in _QUOTED_TYPES and original_id is None:
            original_id = _quoted_message_id(part)
    recipients = failed_recipients(blocks)
    # Only recipients a delivery-status part names make a report that can be verified.
    from_report = bool(recipients) and is_delivery_report(message)
    if not recipients and failed_recipients_header:
        recipients = [
            BouncedRecipient(address=address)
            for address in addresses_only([failed_recipients_header])
        ]
    if not recipients:
        return None
    reporting_mta = _typed_value(blocks[0].get("reporting-mta")) if blocks else None
    return Bounce(
        recipients=tuple(recipients),
        reporting_mta=reporting_mta,
        original_message_id=original_id,
        is_report=from_report,
    )


def is_delivery_report(message: Message) -> bool:
    """``multipart/report; report-type=delivery-status`` at the top of the message."""
    report_type = (parts.content_param(message, "report-type") or "").lower()
    return parts.content_type(message) == "multipart/report" and "delivery-status" in report_type


def status_blocks(part: Message) -> list[Fields]:
    """The field blocks of a delivery-status part: per-message first, then per-recipient."""
    blocks = parts.subparts(part)
    encoding = (part.get("content-transfer-encoding") or "").strip().lower()
    if blocks and encoding not in _ENCODINGS:
        # The stdlib already split the blocks; their raw values are read as is.
        return [
            {
                str(name).lower(): " ".join(clean_text(str(value)).split())
                for name, value in block.raw_items()
            }
            for block in blocks
        ]
    # An encoded part (Exchange base64-encodes it) was split as if it were plain
    # text: put its text back together, decode it, and split it here.
    raw = "\n".join(_block_source(block) for block in blocks) if blocks else None
    data = decode_transfer(raw, encoding) if raw is not None else parts.payload_bytes(part)
    return parse_field_blocks(decode_bytes(data, "utf-8"))


def _block_source(block: Message) -> str:
    header_lines = "".join(f"{name}: {value}\n" for name, value in block.raw_items())
    payload = block.get_payload()
    return header_lines + (payload if isinstance(payload, str) else "")


def parse_field_blocks(text: str) -> list[Fields]:
    """``Name: value`` blocks separated by blank lines, with folded lines joined."""
    blocks: list[Fields] = []
    for chunk in text.replace("\r\n", "\n").split("\n\n"):
        fields: Fields = {}
        last = None
        for line in chunk.split("\n"):
            if line[:1] in (" ", "\t") and last:
                fields[last] += " " + line.strip()
            elif ":" in line:
                name, _, value = line.partition(":")
                last = name.strip().lower()
                fields.setdefault(last, value.strip())
        if fields:
            blocks.append(fields)
    return blocks


def failed_recipients(blocks: list[Fields]) -> list[BouncedRecipient]:
    """The recipients whose ``Action`` is ``failed`` (or, without one, a 5.x.x status)."""
    found: dict[str, BouncedRecipient] = {}
    for block in blocks:
        final = normalize_address(_typed_value(block.get("final-recipient")))
        original = normalize_address(_typed_value(block.get("original-recipient")))
        address = final or original
        status = (block.get("status") or "").split(" ")[0] or None
        action = (block.get("action") or "").strip().lower()
        failed = action.startswith("failed") or (not action and (status or "").startswith("5"))
        if address is None or not failed or address in found:
            continue
        diagnostic = _typed_value(block.get("diagnostic-code"))
        found[address] = BouncedRecipient(
            address=address,
            original_address=original if original != address else None,
            status=status,
            diagnostic=diagnostic[:MAX_DIAGNOSTIC_CHARS] if diagnostic else None,
        )
    return list(found.values())


def _typed_value(value: str | None) -> str | None:
    # DSN fields are "type; value" (e.g. "rfc822; bob@example.com", "smtp; 550 …").
    if not value:
        return None
    _, semicolon, rest = value.partition(";")
    return (rest if semicolon else value).strip() or None


def _quoted_message_id(part: Message) -> str | None:
    inner = parts.subparts(part)
    if inner:
        return _message_id_of(inner[0])
    try:
        headers = email.message_from_bytes(parts.payload_bytes(part), policy=policy.default)
    except Exception:  # a quoted header block is best effort
        return None
    return _message_id_of(headers)


def _message_id_of(message: Message) -> str | None:
    for name, value in message.raw_items():
        if str(name).lower() == "message-id":
            return normalize_message_id(clean_text(str(value)))
    return None
