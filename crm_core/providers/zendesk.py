"""Zendesk: base64(HMAC-SHA256(signing secret, timestamp + raw body)).

The signature is ``X-Zendesk-Webhook-Signature`` and the timestamp it covers is
``X-Zendesk-Webhook-Signature-Timestamp`` (ISO 8601), which must be within the
tolerance of now so a captured request cannot be replayed later. The event's
``id`` and ``type`` (``zen:event-type:ticket.comment_added``) are in the body of
an event-subscription webhook, which is parsed once for them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from crm_core.payloads.kinds import EventKind, ProviderName
from crm_core.providers.base import (
    Delivery,
    Provider,
    ProviderRequest,
    SignatureError,
    check_age,
    decode_base64,
    signed_by_any,
)

SIGNATURE = "X-Zendesk-Webhook-Signature"
TIMESTAMP = "X-Zendesk-Webhook-Signature-Timestamp"
TICKET_EVENT = "zen:event-type:ticket."


class Zendesk(Provider):
    name = ProviderName.ZENDESK
    label = "Zendesk"
    topics = {
        TICKET_EVENT + "created": EventKind.TICKETS,
        TICKET_EVENT + "status_changed": EventKind.TICKETS,
        TICKET_EVENT + "priority_changed": EventKind.TICKETS,
        TICKET_EVENT + "comment_added": EventKind.TICKETS,
    }
    home_kind = EventKind.TICKETS
    kept_headers = (TIMESTAMP, "X-Zendesk-Webhook-Id", "X-Zendesk-Account-Id")

    def verify(
        self, request: ProviderRequest, *, secrets: Iterable[str], now: float, tolerance: int
    ) -> None:
        signature = decode_base64(request.header(SIGNATURE), header=SIGNATURE)
        timestamp = request.header(TIMESTAMP)
        if not timestamp:
            raise SignatureError(f"missing {TIMESTAMP} header")
        check_age(_parse_time(timestamp), now=now, tolerance=tolerance, header=TIMESTAMP)
        if not signed_by_any(secrets, signature, timestamp.encode("utf-8"), request.body):
            raise SignatureError(f"{SIGNATURE} does not match the timestamp and body")

    def classify(self, request: ProviderRequest, *, max_depth: int) -> Delivery:
        return self.delivery_from_body(request, max_depth=max_depth, id_key="id", type_key="type")

    def setup_steps(self, endpoint: str) -> list[str]:
        return [
            "In Zendesk Admin Center: Apps and integrations > Webhooks > Create webhook,"
            " choose Zendesk events and subscribe to:",
            "  " + ", ".join(self.topics),
            "Request method POST, format JSON, authentication None.",
            "After creating it, open the webhook, Reveal secret, and give this source that"
            " signing secret.",
            "Paste this URL as the Endpoint URL:",
            endpoint,
        ]


def _parse_time(value: str) -> dt.datetime:
    try:
        when = dt.datetime.fromisoformat(value.strip())
    except ValueError:
        raise SignatureError(f"{TIMESTAMP} is not an ISO 8601 time") from None
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)
