"""SendGrid's posts in our terms: an Inbound Parse post as RFC 5322, a batch as reports.

An Inbound Parse post is the raw message (``email``, "POST the raw, full MIME
message") or SendGrid's parse of it: ``headers`` (the original header block,
as sent), ``text`` and ``html`` in the charsets ``charsets`` names (a JSON
object, field -> charset), ``from``, ``to`` and ``subject`` (used only when the
header block is missing), and ``attachment1`` … ``attachment<attachments>``,
described by ``attachment-info`` (``filename``, ``type``, ``content-id``).

An Event Webhook batch is a JSON array of events, each with ``event``,
``email``, ``sg_event_id``, ``sg_message_id`` (the id the send API returned in
``X-Message-Id``, then SendGrid's ``.filter…`` suffix, which the lookup drops), ``smtp-id`` (the
message's Message-ID), ``timestamp``, and its ``reason``, ``status`` or
``type``. ``bounce`` with ``type: blocked`` (or the ``blocked`` event) is a
transient failure, like ``deferred``: a receiving server refused this message,
not the address; ``dropped`` is permanent when SendGrid dropped it for a bounced
or invalid address, and counts as a transient failure otherwise.
"""

from __future__ import annotations

import json
from email import policy
from email.parser import BytesHeaderParser
from typing import Any

from crm_core.bounces.reports import DeliveryReport, ReportOutcome
from crm_core.errors import FieldError, InvalidInput
from crm_core.mail import MailLimits, normalize_message_id
from crm_core.providers.mail_form import MailForm, read_mail_form
from crm_core.providers.mail_message import InboundMail, Part, compose
from crm_core.providers.reports import bounded, json_of, reason_of, timestamp_of

PROVIDER = "sendgrid"
OUTCOMES = {
    "bounce": ReportOutcome.BOUNCED,
    "blocked": ReportOutcome.BOUNCED,
    "dropped": ReportOutcome.BOUNCED,
    "spamreport": ReportOutcome.COMPLAINED,
    "unsubscribe": ReportOutcome.UNSUBSCRIBED,
    "group_unsubscribe": ReportOutcome.UNSUBSCRIBED,
}
# Why SendGrid drops a message without trying: only these say the address itself is bad.
PERMANENT_DROPS = ("bounced address", "invalid", "unsubscribed address", "spam reporting address")


def inbound_mail(body: bytes, content_type: str, *, limits: MailLimits) -> InboundMail:
    """The message of an Inbound Parse post; ``InvalidInput`` naming SendGrid's fields when it
    has none."""
    form = read_mail_form(body, content_type, max_parts=limits.max_parts)
    if isinstance(form, FieldError):
        raise InvalidInput([form])
    raw = form.raw("email")
    if raw is not None:
        return InboundMail(raw)
    charsets = _charsets(form.text("charsets"))
    headers = _header_fields(form, charsets)
    if not headers:
        raise InvalidInput([FieldError(("headers",), "an Inbound Parse post has it", "missing")])
    return InboundMail(
        compose(
            headers,
            text=form.text("text", charsets.get("text", "utf-8")),
            html=form.text("html", charsets.get("html", "utf-8")),
            attachments=_attachments(form),
        )
    )


def _charsets(value: str | None) -> dict[str, str]:
    try:
        charsets = json.loads(value) if value else {}
    except ValueError:
        return {}
    if not isinstance(charsets, dict):
        return {}
    return {k: v for k, v in charsets.items() if isinstance(k, str) and isinstance(v, str)}


def _header_fields(form: MailForm, charsets: dict[str, str]) -> list[tuple[str, str]]:
    """The original header block, field by field, its bytes kept (8-bit ones too)."""
    block = form.raw("headers")
    if block:
        parsed = BytesHeaderParser(policy=policy.compat32).parsebytes(block.strip() + b"\r\n\r\n")
        return [(name, str(value)) for name, value in parsed.raw_items()]
    fields = []
    for name, field in (("From", "from"), ("To", "to"), ("Subject", "subject")):
        value = form.text(field, charsets.get(field, "utf-8"))
        if value:
            fields.append((name, value))
    return fields


def _attachments(form: MailForm) -> list[Part]:
    info = _attachment_info(form.text("attachment-info"))
    parts = []
    for name in sorted(form.files, key=_number):
        file = form.files[name]
        if not name.startswith("attachment"):
            continue
        described = info.get(name, {})
        parts.append(
            Part(
                file.data,
                _str(described.get("type")) or file.content_type,
                _str(described.get("filename")) or file.filename,
                _str(described.get("content-id")),
            )
        )
    return parts


def _number(name: str) -> tuple[int, str]:
    digits = name.removeprefix("attachment")
    return (int(digits) if digits.isdigit() else 1 << 30, name)


def _attachment_info(value: str | None) -> dict[str, dict[str, Any]]:
    try:
        info = json.loads(value) if value else {}
    except ValueError:
        return {}
    if not isinstance(info, dict):
        return {}
    return {k: v for k, v in info.items() if isinstance(v, dict)}


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def delivery_reports(body: bytes, *, max_depth: int) -> list[DeliveryReport]:
    """A report for each event of the batch the platform acts on, in order."""
    events = json_of(body, max_depth=max_depth)
    if not isinstance(events, list):
        raise InvalidInput([FieldError(("body",), "an event batch is a JSON array", "list_type")])
    reports = []
    errors = []
    for index, event in enumerate(events):
        if not isinstance(event, dict):
            errors.append(FieldError((index,), "an event is a JSON object", "model_type"))
            continue
        outcome = OUTCOMES.get(event.get("event"))  # type: ignore[arg-type]
        if outcome is None:
            continue
        report = _report(event, outcome, index, errors)
        if report is not None:
            reports.append(report)
    if errors:
        raise InvalidInput(errors)
    return reports


def _report(
    event: dict[str, Any], outcome: ReportOutcome, index: int, errors: list[FieldError]
) -> DeliveryReport | None:
    recipient, event_id = event.get("email"), event.get("sg_event_id")
    if not isinstance(recipient, str) or not recipient:
        errors.append(FieldError((index, "email"), "the event names no recipient"))
    if not isinstance(event_id, str) or not event_id:
        errors.append(FieldError((index, "sg_event_id"), "the event has no id", "missing"))
    if not isinstance(recipient, str) or not isinstance(event_id, str) or not recipient:
        return None
    sg_message_id = _str(event.get("sg_message_id"))
    return DeliveryReport(
        provider=PROVIDER,
        report_id=bounded(event_id),
        recipient=recipient,
        outcome=outcome,
        permanent=_permanent(event, outcome),
        provider_message_id=sg_message_id,
        message_id=normalize_message_id(_str(event.get("smtp-id"))),
        reason=reason_of(
            event.get("event"), event.get("type"), event.get("status"), event.get("reason")
        ),
        occurred_at=timestamp_of(event.get("timestamp")),
    )


def _permanent(event: dict[str, Any], outcome: ReportOutcome) -> bool:
    if outcome != ReportOutcome.BOUNCED:
        return True
    name = event.get("event")
    if name == "blocked" or event.get("type") == "blocked":
        return False
    if name == "dropped":
        reason = str(event.get("reason") or "").lower()
        return any(reason.startswith(cause) for cause in PERMANENT_DROPS)
    return True
