"""Hypothesis: no header or body makes a provider raise anything but SignatureError.

The intake turns SignatureError into a 401; anything else would be a 500.
"""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from werkzeug.datastructures import Headers

from crm_core.providers import PROVIDERS, ProviderRequest, SignatureError

# Header values a client can actually send: latin-1 text without line breaks.
header_text = st.text(
    alphabet=st.characters(min_codepoint=0x20, max_codepoint=0xFF, blacklist_characters="\x7f"),
    max_size=300,
)
header = (
    st.none()
    | header_text
    | st.just("")
    | st.just("sha256=")
    | st.just("t=1,v1=")
    | st.just("Basic ")
    | st.integers().map(lambda n: f"t={n},v1=00")
    | st.datetimes().map(lambda d: d.isoformat())
)
SIGNATURE_HEADERS = [
    "X-Shopify-Hmac-Sha256",
    "X-WC-Webhook-Signature",
    "Stripe-Signature",
    "X-Zendesk-Webhook-Signature",
    "X-Zendesk-Webhook-Signature-Timestamp",
    "Typeform-Signature",
    "Authorization",
    "X-Shopify-Topic",
    "X-Shopify-Webhook-Id",
    "X-WC-Webhook-Delivery-ID",
]
body = st.binary(max_size=2000) | st.sampled_from(
    [b'{"id": null, "type": []}', b'{"event_id": {}, "event_type": 1}', b"[" * 40 + b"]" * 40]
)


@pytest.mark.parametrize("provider", sorted(set(PROVIDERS) - {"standard"}))
@given(
    values=st.lists(header, min_size=len(SIGNATURE_HEADERS), max_size=len(SIGNATURE_HEADERS)),
    raw=body,
)
@settings(max_examples=100, deadline=None)
def test_hostile_requests_are_refused_or_classified_never_crash(
    provider: str, values: list[str | None], raw: bytes
) -> None:
    sent = Headers(
        [(n, v) for n, v in zip(SIGNATURE_HEADERS, values, strict=True) if v is not None]
    )
    request = ProviderRequest(sent, raw, "application/json")
    chosen = PROVIDERS[provider]
    with contextlib.suppress(SignatureError):
        chosen.verify(request, secrets=["secret", "whsec_x"], now=1_764_500_000, tolerance=300)
    delivery = chosen.classify(request, max_depth=32)
    assert 0 < len(delivery.webhook_id) <= 255
    assert delivery.topic is None or len(delivery.topic) <= 255
