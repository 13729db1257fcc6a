"""Mailgun's posts in our terms: a route's message as RFC 5322, an event as a delivery report.

A route's post is the raw message (``body-mime``) or Mailgun's parse of it:
``message-headers`` (a JSON list of ``[name, value]`` pairs in the original
order, values decoded to UTF-8), ``body-plain``, ``body-html``, and
``attachment-1`` … ``attachment-<attachment-count>`` (``content-id-map`` names
the inline ones). Either way ``stripped-text`` is the reply without its quotes
and signature.

An event's ``event-data`` carries ``event``, ``recipient``, ``id``,
``timestamp``, ``severity`` (``permanent`` or ``temporary`` for ``failed``),
``reason``, ``delivery-status`` (``code``, ``description``, ``message``) and the
message's ``message-id`` (without angle brackets), which is also the id
Mailgun's send API returns (with them).
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from crm_core.bounces.reports import DeliveryReport, ReportOutcome
from crm_core.errors import FieldError, InvalidInput
from crm_core.mail import MailLimits, normalize_message_id
from crm_core.providers.mail_form import read_mail_form
from crm_core.providers.mail_message import InboundMail, Part, compose
from crm_core.providers.mailgun import HANDLED_EVENTS
from crm_core.providers.mapped import dig
from crm_core.providers.reports import bounded, document_of, reason_of, timestamp_of

PROVIDER = "mailgun"
OUTCOMES = {
    "failed": ReportOutcome.BOUNCED,
    "complained": ReportOutcome.COMPLAINED,
    "unsubscribed": ReportOutcome.UNSUBSCRIBED,
}
assert set(OUTCOMES) == set(HANDLED_EVENTS)


def inbound_mail(body: bytes, content_type: str, *, limits: MailLimits) -> InboundMail:
    """The message of a route's post; ``InvalidInput`` naming Mailgun's fields when it has
    none."""
    form = read_mail_form(body, content_type, max_parts=limits.max_parts)
    if isinstance(form, FieldError):
        raise InvalidInput([form])
    reply = form.text("stripped-text")
    raw = form.raw("body-mime")
    if raw is not None:
        return InboundMail(raw, reply)
    headers = _message_headers(form.text("message-headers"))
    text = form.text("body-plain")
    htmls = [value.decode("utf-8", "replace") for value in form.values.get("body-html", [])]
    html = "\n".join(htmls) if htmls else None
    return InboundMail(
        compose(headers, text=text, html=html, attachments=_attachments(form)), reply
    )


def _message_headers(value: str | None) -> list[tuple[str, str]]:
    if value is None:
        raise InvalidInput([FieldError(("message-headers",), "a route's post has it", "missing")])
    try:
        pairs = json.loads(value)
    except ValueError:
        raise InvalidInput(
            [FieldError(("message-headers",), "not a JSON list of [name, value]", "json_invalid")]
        ) from None
    if not isinstance(pairs, list):
        raise InvalidInput(
            [FieldError(("message-headers",), "not a JSON list of [name, value]", "list_type")]
        )
    return [
        (pair[0], pair[1])
        for pair in pairs
        if isinstance(pair, list)
        and len(pair) == 2
        and isinstance(pair[0], str)
        and isinstance(pair[1], str)
    ]


def _attachments(form: Any) -> list[Part]:
    try:
        count = int(form.text("attachment-count") or 0)
    except ValueError:
        count = 0
    inline = _content_ids(form.text("content-id-map"))
    parts = []
    for number in range(1, min(count, len(form.files)) + 1):
        name = f"attachment-{number}"
        file = form.files.get(name)
        if file is not None:
            parts.append(Part(file.data, file.content_type, file.filename, inline.get(name)))
    return parts


def _content_ids(value: str | None) -> dict[str, str]:
    """``content-id-map`` ({"<cid>": "attachment-1"}) turned around: field -> Content-ID."""
    try:
        mapping = json.loads(value) if value else {}
    except ValueError:
        return {}
    if not isinstance(mapping, dict):
        return {}
    return {field: cid for cid, field in mapping.items() if isinstance(field, str)}


def delivery_reports(body: bytes, *, max_depth: int) -> list[DeliveryReport]:
    """The report of an event webhook's ``event-data``; none for an event not acted on."""
    data = document_of(body, max_depth=max_depth).get("event-data")
    if not isinstance(data, dict):
        raise InvalidInput([FieldError(("event-data",), "an event carries event-data", "missing")])
    outcome = OUTCOMES.get(data.get("event"))  # type: ignore[arg-type]
    if outcome is None:
        return []
    recipient = data.get("recipient")
    report_id = data.get("id")
    errors = []
    if not isinstance(recipient, str) or not recipient:
        errors.append(FieldError(("event-data", "recipient"), "the event names no recipient"))
    if not isinstance(report_id, str) or not report_id:
        errors.append(FieldError(("event-data", "id"), "the event has no id", "missing"))
    if errors:
        raise InvalidInput(errors)
    assert isinstance(recipient, str)
    assert isinstance(report_id, str)
    message_id = normalize_message_id(_text(dig(data, "message", "headers", "message-id")))
    return [
        DeliveryReport(
            provider=PROVIDER,
            report_id=bounded(report_id),
            recipient=recipient,
            outcome=outcome,
            permanent=outcome != ReportOutcome.BOUNCED or data.get("severity") == "permanent",
            provider_message_id=f"<{message_id}>" if message_id else None,
            message_id=message_id,
            reason=reason_of(
                data.get("reason"),
                dig(data, "delivery-status", "code"),
                dig(data, "delivery-status", "description"),
                dig(data, "delivery-status", "message"),
            ),
            occurred_at=_when(data.get("timestamp")),
        )
    ]


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _when(value: Any) -> dt.datetime | None:
    return timestamp_of(value)
