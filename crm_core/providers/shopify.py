"""Shopify: ``X-Shopify-Hmac-Sha256`` is base64(HMAC-SHA256(app client secret, raw body)).

The topic is ``X-Shopify-Topic``; ``X-Shopify-Webhook-Id`` is the same on every
retry of one delivery (``X-Shopify-Event-Id`` is taken when it is absent).
Nothing in the body is read at intake.
"""

from __future__ import annotations

from collections.abc import Iterable

from crm_core.payloads.kinds import EventKind, ProviderName
from crm_core.providers.base import (
    Delivery,
    Provider,
    ProviderRequest,
    SignatureError,
    decode_base64,
    signed_by_any,
)

SIGNATURE = "X-Shopify-Hmac-Sha256"
TOPIC = "X-Shopify-Topic"
WEBHOOK_ID = "X-Shopify-Webhook-Id"
EVENT_ID = "X-Shopify-Event-Id"


class Shopify(Provider):
    name = ProviderName.SHOPIFY
    label = "Shopify"
    topics = {
        "orders/create": EventKind.ORDERS,
        "orders/updated": EventKind.ORDERS,
        "orders/paid": EventKind.ORDERS,
        "orders/cancelled": EventKind.ORDERS,
        "orders/fulfilled": EventKind.ORDERS,
        "refunds/create": EventKind.ORDERS,
        "customers/create": EventKind.LEADS,
        "customers/update": EventKind.LEADS,
    }
    home_kind = EventKind.ORDERS
    kept_headers = (
        TOPIC,
        WEBHOOK_ID,
        EVENT_ID,
        "X-Shopify-Shop-Domain",
        "X-Shopify-API-Version",
        "X-Shopify-Triggered-At",
    )

    def verify(
        self, request: ProviderRequest, *, secrets: Iterable[str], now: float, tolerance: int
    ) -> None:
        signature = decode_base64(request.header(SIGNATURE), header=SIGNATURE)
        if not signed_by_any(secrets, signature, request.body):
            raise SignatureError(f"{SIGNATURE} does not match the body")

    def classify(self, request: ProviderRequest, *, max_depth: int) -> Delivery:
        webhook_id = request.header(WEBHOOK_ID) or request.header(EVENT_ID)
        return self.delivery(
            request, webhook_id=webhook_id, topic=request.header(TOPIC), id_field=WEBHOOK_ID
        )

    def setup_steps(self, endpoint: str) -> list[str]:
        return [
            "In the Shopify admin: Settings > Notifications > Webhooks > Create webhook"
            " (or your app's webhook subscriptions), format JSON, one per topic:",
            "  " + ", ".join(self.topics),
            "Give this source the secret that signs them: the app's client secret"
            " (for admin-made webhooks, the key shown under the webhook list).",
            "Paste this URL as the webhook URL:",
            endpoint,
        ]
