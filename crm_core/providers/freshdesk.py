"""Freshdesk: an automation rule's webhook, authenticated only by HTTP Basic credentials.

Freshdesk signs nothing, so the source gets a generated user and password
(stored as ``user:password``) which the URL carries and Freshdesk sends as an
``Authorization: Basic`` header. Freshdesk sends no delivery id either: the
body's SHA-256 is the delivery id, so a resent identical body is one event.
Every automation payload is a ticket.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable

from crm_core.payloads.kinds import EventKind, ProviderName
from crm_core.providers.base import (
    Delivery,
    Provider,
    ProviderRequest,
    body_digest_id,
    check_basic,
    url_with_credentials,
)

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
        check_basic(request, secrets)

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
        return url_with_credentials(super().endpoint(base_url, source), secret)

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
