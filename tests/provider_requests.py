"""Provider requests for tests, signed as each provider documents it.

Stripe's are signed by Stripe's own library; for the others, which publish no
Python library, the signature is computed here from the provider's documented
algorithm, independently of ``crm_core.providers``.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import time
import uuid
from pathlib import Path

import stripe

FIXTURES = Path(__file__).parent / "fixtures" / "providers"
JSON = "application/json"


def provider_fixture(path: str) -> bytes:
    """A literal payload from ``tests/fixtures/providers``, e.g. ``shopify/orders_create.json``."""
    return (FIXTURES / path).read_bytes()


def _b64_hmac(secret: str, message: bytes) -> str:
    return base64.b64encode(hmac.new(secret.encode(), message, hashlib.sha256).digest()).decode()


def shopify_headers(
    secret: str, body: bytes, *, topic: str = "orders/create", webhook_id: str | None = None
) -> dict[str, str]:
    """X-Shopify-Hmac-Sha256: base64 HMAC-SHA256 of the raw body with the client secret."""
    return {
        "Content-Type": JSON,
        "X-Shopify-Topic": topic,
        "X-Shopify-Hmac-Sha256": _b64_hmac(secret, body),
        "X-Shopify-Shop-Domain": "leaf-and-kettle.myshopify.com",
        "X-Shopify-API-Version": "2024-10",
        "X-Shopify-Webhook-Id": webhook_id or str(uuid.uuid4()),
        "X-Shopify-Triggered-At": "2026-11-30T15:14:05.123456Z",
    }


def woocommerce_headers(
    secret: str, body: bytes, *, topic: str = "order.created", delivery_id: str | None = None
) -> dict[str, str]:
    """X-WC-Webhook-Signature: base64 HMAC-SHA256 of the raw body with the webhook secret."""
    resource, _, event = topic.partition(".")
    return {
        "Content-Type": JSON,
        "X-WC-Webhook-Source": "https://shop.example.org/",
        "X-WC-Webhook-Topic": topic,
        "X-WC-Webhook-Resource": resource,
        "X-WC-Webhook-Event": event,
        "X-WC-Webhook-Signature": _b64_hmac(secret, body),
        "X-WC-Webhook-ID": "14",
        "X-WC-Webhook-Delivery-ID": delivery_id or uuid.uuid4().hex,
    }


def stripe_headers(secret: str, body: bytes, *, at: float | None = None) -> dict[str, str]:
    """Stripe-Signature as Stripe's library generates it."""
    header = stripe.WebhookSignature.generate_signature_header(
        body.decode("utf-8"), secret, timestamp=int(at if at is not None else time.time())
    )
    return {"Content-Type": "application/json; charset=utf-8", "Stripe-Signature": header}


def zendesk_headers(secret: str, body: bytes, *, at: dt.datetime | None = None) -> dict[str, str]:
    """base64(HMACSHA256(TIMESTAMP + BODY)), the timestamp in its own header."""
    timestamp = (at or dt.datetime.now(dt.UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "Content-Type": JSON,
        "X-Zendesk-Webhook-Signature": _b64_hmac(secret, timestamp.encode() + body),
        "X-Zendesk-Webhook-Signature-Timestamp": timestamp,
        "X-Zendesk-Webhook-Id": "01JDXQ7ZP3G6B0M8W4E2R5T9YK",
        "X-Zendesk-Account-Id": "22129848",
    }


def typeform_headers(secret: str, body: bytes) -> dict[str, str]:
    """Typeform-Signature: sha256=<base64 HMAC-SHA256 of the raw body>."""
    return {"Content-Type": JSON, "Typeform-Signature": "sha256=" + _b64_hmac(secret, body)}


def freshdesk_headers(credentials: str) -> dict[str, str]:
    """HTTP Basic, as a client sends the user and password of a URL."""
    token = base64.b64encode(credentials.encode()).decode()
    return {"Content-Type": JSON, "Authorization": f"Basic {token}"}


# --- custom senders, as the two example mapping files in docs/providers/examples describe them

EXAMPLES = Path(__file__).parent.parent / "docs" / "providers" / "examples"


def github_style_headers(
    secret: str, body: bytes, *, event: str = "order.completed", delivery: str | None = None
) -> dict[str, str]:
    """X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the raw body>, as GitHub signs."""
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return {
        "Content-Type": JSON,
        "X-Hub-Signature-256": f"sha256={digest}",
        "X-Shop-Delivery": delivery or str(uuid.uuid4()),
        "X-Shop-Event": event,
    }


def lead_form_headers(secret: str, body: bytes, *, at: float | None = None) -> dict[str, str]:
    """X-Form-Signature: v1=<base64 HMAC-SHA256 of "{timestamp}.{body}">, the Unix timestamp
    in X-Form-Timestamp."""
    timestamp = str(int(at if at is not None else time.time()))
    signed = timestamp.encode() + b"." + body
    return {
        "Content-Type": JSON,
        "X-Form-Signature": "v1=" + _b64_hmac(secret, signed),
        "X-Form-Timestamp": timestamp,
    }
