"""Mailgun: inbound mail from a route's ``forward()`` and delivery events, on one URL.

Mailgun signs both alike: ``signature`` is hex(HMAC-SHA256(webhook signing key,
timestamp + token)), where ``timestamp`` (Unix seconds) must be within the
tolerance of now and ``token`` is 50 random characters. An event webhook posts
JSON with those three in its ``signature`` object beside ``event-data``; a route
posts a form (urlencoded, or multipart when the message has attachments) with
them as fields, the message parsed into fields or, when the URL ends in
``mime``, whole in ``body-mime``.

The signature covers the timestamp and the token, not the body, so the token is
the delivery id: a request that reuses a token is a replay, answered as the
redelivery of the first and never stored or processed again, whatever its body.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from crm_core.errors import FieldError
from crm_core.payloads.json_body import JSON_TYPE
from crm_core.payloads.kinds import EventKind, ProviderName
from crm_core.providers.base import (
    Delivery,
    Provider,
    ProviderRequest,
    SignatureError,
    check_age,
    hmac_sha256,
)
from crm_core.providers.mail_form import MAIL_FORM_TYPES, MailForm, read_mail_form

INBOUND = "inbound"
HANDLED_EVENTS = ("failed", "complained", "unsubscribed")
# A route's post of one message: its fields, besides the message's own parts.
FORM_PARTS = 1000
MAX_TOKEN = 255


@dataclass(frozen=True)
class Signed:
    """What Mailgun signs a request with, and what it is."""

    timestamp: str
    token: str
    signature: str
    topic: str | None
    errors: list[FieldError] | None = None


class Mailgun(Provider):
    name = ProviderName.MAILGUN
    label = "Mailgun"
    topics = {INBOUND: EventKind.EMAILS, **{e: EventKind.MAIL_EVENTS for e in HANDLED_EVENTS}}
    home_kind = EventKind.MAIL_EVENTS
    media_types = (JSON_TYPE, *MAIL_FORM_TYPES)
    carries_mail = True

    def receive(
        self,
        request: ProviderRequest,
        *,
        secrets: Iterable[str],
        now: float,
        tolerance: int,
        max_depth: int,
    ) -> Delivery:
        signed = self.read(request, max_depth=max_depth)
        _check(signed, secrets=secrets, now=now, tolerance=tolerance)
        return self._delivery(request, signed)

    def verify(
        self, request: ProviderRequest, *, secrets: Iterable[str], now: float, tolerance: int
    ) -> None:
        _check(self.read(request, max_depth=64), secrets=secrets, now=now, tolerance=tolerance)

    def classify(self, request: ProviderRequest, *, max_depth: int) -> Delivery:
        return self._delivery(request, self.read(request, max_depth=max_depth))

    def read(self, request: ProviderRequest, *, max_depth: int) -> Signed:
        """The signature fields and topic of a request (empty when it has none: it cannot
        pass ``_check``), and what prevents reading it."""
        if request.media_type == JSON_TYPE:
            return _from_json(self.parse(request, max_depth=max_depth))
        form = read_mail_form(request.body, _content_type(request), max_parts=FORM_PARTS)
        if isinstance(form, FieldError):
            return Signed("", "", "", None, errors=[form])
        return _from_form(form)

    def _delivery(self, request: ProviderRequest, signed: Signed) -> Delivery:
        return self.delivery(
            request,
            webhook_id=signed.token,
            topic=signed.topic,
            id_field="signature.token",
            errors=signed.errors,
        )

    def setup_steps(self, endpoint: str) -> list[str]:
        return [
            "Give this source your Mailgun HTTP webhook signing key (Mailgun: Send >"
            " Sending > Webhooks, or API Security > HTTP webhook signing key).",
            "Inbound mail: Receive > Create route, with the expression of your support"
            ' address, and the action forward("URL") with the URL below. For the raw'
            " message instead of Mailgun's parsed fields, append ?as=mime to it: Mailgun"
            " posts the whole message when the URL ends in mime.",
            "Delivery events: Send > Sending > Webhooks > Add webhook, once for each of"
            " Permanent failure, Temporary failure, Spam complaints and Unsubscribes, with"
            " the same URL.",
            endpoint,
        ]


def _content_type(request: ProviderRequest) -> str:
    return request.header("Content-Type") or request.media_type


def _from_json(document: dict[str, Any] | FieldError) -> Signed:
    if isinstance(document, FieldError):
        return Signed("", "", "", None, errors=[document])
    block = document.get("signature")
    if not isinstance(block, dict):
        block = {}
    event_data = document.get("event-data")
    topic = event_data.get("event") if isinstance(event_data, dict) else None
    errors = None
    if not isinstance(event_data, dict):
        errors = [FieldError(("event-data",), "an event webhook carries event-data", "missing")]
    return Signed(
        timestamp=_text(block.get("timestamp")),
        token=_text(block.get("token")),
        signature=_text(block.get("signature")),
        topic=topic if isinstance(topic, str) else None,
        errors=errors,
    )


def _from_form(form: MailForm) -> Signed:
    # A legacy (v2) event webhook posts a form too, with its ``event``; a route's post has none.
    event = form.text("event")
    return Signed(
        timestamp=form.text("timestamp") or "",
        token=form.text("token") or "",
        signature=form.text("signature") or "",
        topic=INBOUND if event is None else f"legacy:{event}",
    )


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return ""
    return str(value) if isinstance(value, str | int) else ""


def _check(signed: Signed, *, secrets: Iterable[str], now: float, tolerance: int) -> None:
    if not signed.signature:
        raise SignatureError("missing signature")
    token = signed.token
    if not token or len(token) > MAX_TOKEN or not token.isascii() or not token.isprintable():
        raise SignatureError("missing token")
    timestamp = signed.timestamp
    if not timestamp.isascii() or not timestamp.isdigit() or len(timestamp) > 12:
        raise SignatureError("timestamp must be Unix seconds")
    check_age(int(timestamp), now=now, tolerance=tolerance, header="timestamp")
    given = signed.signature.strip().lower().encode("ascii", "replace")
    message = (timestamp + signed.token).encode("utf-8")
    matched = False
    for secret in secrets:
        matched |= hmac.compare_digest(hmac_sha256(secret, message).hex().encode("ascii"), given)
    if not matched:
        raise SignatureError("signature does not match the timestamp and token")
