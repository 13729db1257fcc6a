"""WooCommerce: ``X-WC-Webhook-Signature`` is base64(HMAC-SHA256(webhook secret, raw body)).

The topic is ``X-WC-Webhook-Topic`` (``order.created``) and each delivery has
its own ``X-WC-Webhook-Delivery-ID``. When a webhook is saved, WooCommerce
first posts an unsigned ``webhook_id=<n>`` form and keeps the webhook only if
the answer is exactly 200: that ping is answered and not stored.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from crm_core.payloads.json_body import JSON_TYPE
from crm_core.payloads.kinds import EventKind, ProviderName
from crm_core.providers.base import (
    Delivery,
    Provider,
    ProviderRequest,
    SignatureError,
    decode_base64,
    signed_by_any,
)

SIGNATURE = "X-WC-Webhook-Signature"
TOPIC = "X-WC-Webhook-Topic"
DELIVERY_ID = "X-WC-Webhook-Delivery-ID"
FORM_TYPE = "application/x-www-form-urlencoded"
_PING = re.compile(rb"^webhook_id=[0-9]{1,20}$")


class WooCommerce(Provider):
    name = ProviderName.WOOCOMMERCE
    label = "WooCommerce"
    topics = {
        "order.created": EventKind.ORDERS,
        "order.updated": EventKind.ORDERS,
        "customer.created": EventKind.LEADS,
    }
    home_kind = EventKind.ORDERS
    # WordPress sends the ping's string body as a form (or with no type at all).
    media_types = (JSON_TYPE, FORM_TYPE, "")
    kept_headers = (
        TOPIC,
        DELIVERY_ID,
        "X-WC-Webhook-ID",
        "X-WC-Webhook-Source",
        "X-WC-Webhook-Resource",
        "X-WC-Webhook-Event",
    )

    def is_ping(self, request: ProviderRequest) -> bool:
        return request.header(SIGNATURE) is None and bool(_PING.match(request.body))

    def verify(
        self, request: ProviderRequest, *, secrets: Iterable[str], now: float, tolerance: int
    ) -> None:
        signature = decode_base64(request.header(SIGNATURE), header=SIGNATURE)
        if not signed_by_any(secrets, signature, request.body):
            raise SignatureError(f"{SIGNATURE} does not match the body")

    def classify(self, request: ProviderRequest, *, max_depth: int) -> Delivery:
        return self.delivery(
            request,
            webhook_id=request.header(DELIVERY_ID),
            topic=request.header(TOPIC),
            id_field=DELIVERY_ID,
        )

    def setup_steps(self, endpoint: str) -> list[str]:
        return [
            "In WordPress: WooCommerce > Settings > Advanced > Webhooks > Add webhook,"
            " status Active, API version WP REST API Integration v3, one per topic:",
            "  " + ", ".join(self.topics),
            "Give this source the webhook's Secret (type your own there, or copy the one"
            " WooCommerce fills in before you save).",
            "Paste this URL as the Delivery URL, then Save webhook:",
            endpoint,
        ]
