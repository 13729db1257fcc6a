"""Postmark's posts in our terms: an inbound message as RFC 5322, a bounce as a report.

An inbound post gives the addresses as objects (``FromFull``, ``ToFull``,
``CcFull``: ``Email`` and ``Name``), ``Subject``, ``Date``, ``ReplyTo``, the
bodies (``TextBody``, ``HtmlBody``), ``StrippedTextReply`` (the reply without
its quotes), the other header fields as a ``Headers`` list of ``Name``/``Value``
(Message-ID, In-Reply-To and References among them) and ``Attachments``
(``Name``, ``ContentType``, base64 ``Content``, ``ContentID``). Postmark's own
``MessageID`` is its id of the post, not the message's Message-ID.

A ``Bounce`` record's ``Type`` says what failed: a hard bounce (the address is
bad) is permanent, a soft one (``SoftBounce``, ``Transient``, a DNS error, a
block) transient; auto-replies, address changes and other notices are not
failures at all, and ``SpamComplaint``/``SpamNotification`` and ``Unsubscribe``
are what they say. ``MessageID`` is the id Postmark's send API returned.
"""

from __future__ import annotations

from email.header import Header
from typing import Any

from crm_core.bounces.reports import DeliveryReport, ReportOutcome
from crm_core.errors import FieldError, InvalidInput
from crm_core.mail import MailLimits
from crm_core.mail.charsets import clean_text
from crm_core.mail.transfer_encoding import lenient_b64decode
from crm_core.providers.mail_message import InboundMail, Part, compose
from crm_core.providers.postmark import SPAM_COMPLAINT, record_type
from crm_core.providers.reports import bounded, document_of, iso_time_of, reason_of

PROVIDER = "postmark"
# Bounce types (https://postmarkapp.com/developer/api/bounce-api#bounce-types) -> outcome and
# whether it is permanent; a type not listed is a notice, not a failure.
BOUNCE_TYPES: dict[str, tuple[ReportOutcome, bool]] = {
    "HardBounce": (ReportOutcome.BOUNCED, True),
    "BadEmailAddress": (ReportOutcome.BOUNCED, True),
    "ManuallyDeactivated": (ReportOutcome.BOUNCED, True),
    "SoftBounce": (ReportOutcome.BOUNCED, False),
    "Transient": (ReportOutcome.BOUNCED, False),
    "DnsError": (ReportOutcome.BOUNCED, False),
    "Blocked": (ReportOutcome.BOUNCED, False),
    "DMARCPolicy": (ReportOutcome.BOUNCED, False),
    "SpamNotification": (ReportOutcome.COMPLAINED, True),
    "SpamComplaint": (ReportOutcome.COMPLAINED, True),
    "Unsubscribe": (ReportOutcome.UNSUBSCRIBED, True),
}
# Set from the post's own fields; a copy in ``Headers`` is not repeated.
OWN_FIELDS = frozenset({"from", "to", "cc", "subject", "date", "reply-to"})


def inbound_mail(
    body: bytes, content_type: str, *, limits: MailLimits, max_depth: int
) -> InboundMail:
    """The message of an inbound post; ``InvalidInput`` naming Postmark's fields when it has
    none."""
    document = document_of(body, max_depth=max_depth)
    sender = _address(document.get("FromFull"))
    if sender is None:
        raise InvalidInput([FieldError(("FromFull",), "an inbound post has it", "missing")])
    fields = [("From", sender)]
    for name, key in (("To", "ToFull"), ("Cc", "CcFull")):
        addresses = [a for a in map(_address, _list(document.get(key))) if a]
        if addresses:
            fields.append((name, ", ".join(addresses)))
    for name, key in (("Subject", "Subject"), ("Date", "Date"), ("Reply-To", "ReplyTo")):
        value = document.get(key)
        if isinstance(value, str) and value:
            fields.append((name, value))
    for header in _list(document.get("Headers")):
        if not isinstance(header, dict):
            continue
        field, text = header.get("Name"), header.get("Value")
        if isinstance(field, str) and isinstance(text, str) and field.lower() not in OWN_FIELDS:
            fields.append((field, text))
    reply = document.get("StrippedTextReply")
    return InboundMail(
        compose(
            fields,
            text=_text(document.get("TextBody")),
            html=_text(document.get("HtmlBody")),
            attachments=_attachments(document.get("Attachments"), limits=limits),
        ),
        reply if isinstance(reply, str) and reply.strip() else None,
    )


def _address(value: Any) -> str | None:
    """``"Name" <email>`` of a ``…Full`` object; ``None`` without a usable address."""
    if not isinstance(value, dict) or not isinstance(value.get("Email"), str):
        return None
    email = clean_text(value["Email"]).strip()
    if not email or any(char in email for char in '<>,;"\r\n'):
        return None
    name = clean_text(value["Name"]).strip() if isinstance(value.get("Name"), str) else ""
    if not name:
        return email
    if name.isascii():
        quoted = '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'
    else:
        quoted = Header(name, "utf-8").encode()
    return f"{quoted} <{email}>"


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _attachments(value: Any, *, limits: MailLimits) -> list[Part]:
    parts = []
    for item in _list(value)[: limits.max_parts]:
        if not isinstance(item, dict) or not isinstance(item.get("Content"), str):
            continue
        parts.append(
            Part(
                lenient_b64decode(item["Content"]),
                _text(item.get("ContentType")) or "application/octet-stream",
                _text(item.get("Name")),
                _text(item.get("ContentID")),
            )
        )
    return parts


def delivery_reports(body: bytes, *, max_depth: int) -> list[DeliveryReport]:
    """The report of a ``Bounce`` or ``SpamComplaint`` record; none for a notice."""
    document = document_of(body, max_depth=max_depth)
    kind = document.get("Type")
    if record_type(document) == SPAM_COMPLAINT:
        kind = SPAM_COMPLAINT
    meaning = BOUNCE_TYPES.get(kind) if isinstance(kind, str) else None
    if meaning is None:
        return []
    recipient, report_id = document.get("Email"), document.get("ID")
    errors = []
    if not isinstance(recipient, str) or not recipient:
        errors.append(FieldError(("Email",), "the record names no recipient"))
    if isinstance(report_id, bool) or not isinstance(report_id, int | str) or report_id == "":
        errors.append(FieldError(("ID",), "the record has no id", "missing"))
    if errors:
        raise InvalidInput(errors)
    assert isinstance(recipient, str)
    message_id = document.get("MessageID")
    return [
        DeliveryReport(
            provider=PROVIDER,
            report_id=bounded(str(report_id)),
            recipient=recipient,
            outcome=meaning[0],
            permanent=meaning[1],
            provider_message_id=bounded(message_id)
            if isinstance(message_id, str) and message_id
            else None,
            reason=reason_of(kind, document.get("Description"), document.get("Details")),
            occurred_at=iso_time_of(document.get("BouncedAt")),
        )
    ]
