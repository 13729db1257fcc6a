"""Freshdesk: an automation rule's webhook, authenticated only by HTTP Basic credentials.

Freshdesk signs nothing, so the source gets a generated user and password
(stored as ``user:password``) which the URL carries and Freshdesk sends as an
``Authorization: Basic`` header. Freshdesk sends no delivery id either: the
body's SHA-256 is the delivery id, so a resent identical body is one event.
Every automation payload is a ticket.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import secrets
from collections.abc import Iterable
from urllib.parse import urlsplit, urlunsplit

from crm_core.payloads.kinds import EventKind, ProviderName
from crm_core.providers.base import (
    Delivery,
    Provider,
    ProviderRequest,
    SignatureError,
    body_digest_id,
)

AUTHORIZATION = "Authorization"
TOPIC = "automation"


class Freshdesk(Provider):
    name = ProviderName.FRESHDESK
    label = "Freshdesk"
    takes_secret = False
    topics = {TOPIC: EventKind.TICKETS}
    home_kind = EventKind.TICKETS

    def verify(
        self, request: ProviderRequest, *, secrets: Iterable[str], now: float, tolerance: int
    ) -> None:
        given = _basic_credentials(request.header(AUTHORIZATION))
        matched = False
        for expected in secrets:
            matched |= hmac.compare_digest(expected.encode("utf-8"), given)
        if not matched:
            raise SignatureError("the Basic credentials are not this source's")

    def classify(self, request: ProviderRequest, *, max_depth: int) -> Delivery:
        return Delivery(
            webhook_id=body_digest_id(request.body),
            kind=EventKind.TICKETS,
            topic=TOPIC,
            handled=True,
        )

    def new_credentials(self) -> str:
        return f"freshdesk-{secrets.token_hex(4)}:{secrets.token_urlsafe(24)}"

    def endpoint(self, base_url: str, source: str, secret: str | None = None) -> str:
        url = super().endpoint(base_url, source)
        if not secret:
            return url
        parts = urlsplit(url)
        return urlunsplit(parts._replace(netloc=f"{secret}@{parts.netloc}"))

    def setup_steps(self, endpoint: str) -> list[str]:
        return [
            "In Freshdesk: Admin > Workflows > Automations > Ticket creation (and/or Ticket"
            " updates) > New rule; under Actions choose Trigger webhook.",
            "Request type POST, Encoding JSON, Content: the ticket fields to send (Simple),"
            " or your own JSON (Advanced).",
            "Paste this URL, which carries the source's user and password (or tick Requires"
            " authentication and enter the two parts before and after the colon):",
            endpoint,
        ]


def _basic_credentials(header: str | None) -> bytes:
    """The ``user:password`` bytes of an ``Authorization: Basic`` header."""
    if not header:
        raise SignatureError("missing Authorization header (HTTP Basic)")
    scheme, _, encoded = header.strip().partition(" ")
    if scheme.lower() != "basic":
        raise SignatureError("the Authorization header must be HTTP Basic")
    try:
        return base64.b64decode(encoded.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise SignatureError("the Basic credentials are not valid base64") from None
