"""Each provider's signature scheme, against vectors made as the provider documents it."""

from __future__ import annotations

import base64
import datetime as dt
import time

import pytest
import stripe
from werkzeug.datastructures import Headers

from crm_core.providers import PROVIDERS, ProviderRequest, SignatureError
from tests.provider_requests import (
    freshdesk_headers,
    provider_fixture,
    shopify_headers,
    stripe_headers,
    typeform_headers,
    woocommerce_headers,
    zendesk_headers,
)

SECRET = "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"


def _request(headers: dict[str, str], body: bytes) -> ProviderRequest:
    sent = Headers(headers)
    return ProviderRequest(sent, body, sent.get("Content-Type", "").split(";")[0])


def _verify(provider: str, headers: dict[str, str], body: bytes, *secrets: str) -> None:
    PROVIDERS[provider].verify(
        _request(headers, body), secrets=secrets or [SECRET], now=time.time(), tolerance=300
    )


# --- Shopify, WooCommerce and Typeform: HMAC of the raw body ---------------------------------

BODY_SIGNED = [
    ("shopify", shopify_headers, "shopify/orders_create.json"),
    ("woocommerce", woocommerce_headers, "woocommerce/order_created.json"),
    ("typeform", typeform_headers, "typeform/form_response.json"),
]


@pytest.mark.parametrize(("provider", "sign", "fixture"), BODY_SIGNED)
def test_a_body_signed_with_the_secret_passes(provider, sign, fixture) -> None:  # type: ignore[no-untyped-def]
    body = provider_fixture(fixture)
    _verify(provider, sign(SECRET, body), body)
    # During a rotation the old and the new secret both verify.
    _verify(provider, sign(SECRET, body), body, "the-new-one", SECRET)


@pytest.mark.parametrize(("provider", "sign", "fixture"), BODY_SIGNED)
def test_another_secret_or_another_body_fails(provider, sign, fixture) -> None:  # type: ignore[no-untyped-def]
    body = provider_fixture(fixture)
    with pytest.raises(SignatureError):
        _verify(provider, sign("not-the-secret", body), body)
    with pytest.raises(SignatureError):
        _verify(provider, sign(SECRET, body), body.replace(b"1", b"2", 1))


@pytest.mark.parametrize(
    ("provider", "header", "value"),
    [
        ("shopify", "X-Shopify-Hmac-Sha256", None),
        ("shopify", "X-Shopify-Hmac-Sha256", "not base64!"),
        ("woocommerce", "X-WC-Webhook-Signature", ""),
        ("typeform", "Typeform-Signature", None),
        ("typeform", "Typeform-Signature", "sha1=AAAA"),
        ("typeform", "Typeform-Signature", "x" * 5000),
    ],
)
def test_a_missing_or_malformed_signature_fails_cleanly(
    provider: str, header: str, value: str | None
) -> None:
    body = b'{"id": 1}'
    sign = {"shopify": shopify_headers, "woocommerce": woocommerce_headers}.get(
        provider, typeform_headers
    )
    headers = sign(SECRET, body)
    headers.pop(header)
    if value is not None:
        headers[header] = value
    with pytest.raises(SignatureError):
        _verify(provider, headers, body)


def test_typeform_signature_is_prefixed_base64_not_hex() -> None:
    body = provider_fixture("typeform/form_response.json")
    headers = typeform_headers(SECRET, body)
    digest = base64.b64decode(headers["Typeform-Signature"].removeprefix("sha256="))
    with pytest.raises(SignatureError):
        _verify("typeform", {"Typeform-Signature": "sha256=" + digest.hex()}, body)


# --- Stripe: hex HMAC over "t.body", checked with Stripe's own library ---------------------

STRIPE_SECRET = "whsec_2b7e151628aed2a6abf7158809cf4f3c"


def _stripe_ok(headers: dict[str, str], body: bytes) -> bool:
    """Stripe's library's verdict on the same request."""
    try:
        stripe.WebhookSignature.verify_header(
            body, headers["Stripe-Signature"], STRIPE_SECRET, tolerance=300
        )
    except stripe.SignatureVerificationError:
        return False
    return True


def test_stripe_accepts_what_stripes_library_signs() -> None:
    body = provider_fixture("stripe/checkout_session_completed.json")
    headers = stripe_headers(STRIPE_SECRET, body)
    assert _stripe_ok(headers, body)
    _verify("stripe", headers, body, STRIPE_SECRET)


def test_stripe_takes_any_of_several_v1_signatures() -> None:
    """While an endpoint secret is rolled, Stripe signs with both: either one passes."""
    body = provider_fixture("stripe/checkout_session_completed.json")
    old = stripe_headers("whsec_old", body)["Stripe-Signature"]
    new = stripe_headers(STRIPE_SECRET, body)["Stripe-Signature"]
    header = {"Stripe-Signature": f"{old},v1={new.split('v1=')[1]},v0=deadbeef"}
    assert _stripe_ok(header, body)
    _verify("stripe", header, body, STRIPE_SECRET)


@pytest.mark.parametrize(
    "mangle",
    [
        pytest.param(lambda h, b: (stripe_headers("whsec_other", b), b), id="other-secret"),
        pytest.param(lambda h, b: (h, b + b" "), id="body-changed"),
        pytest.param(
            lambda h, b: (stripe_headers(STRIPE_SECRET, b, at=time.time() - 301), b), id="too-old"
        ),
        pytest.param(
            lambda h, b: ({"Stripe-Signature": h["Stripe-Signature"].split(",")[1]}, b),
            id="no-timestamp",
        ),
        pytest.param(
            lambda h, b: ({"Stripe-Signature": h["Stripe-Signature"].split(",")[0]}, b),
            id="no-v1",
        ),
    ],
)
def test_stripe_refuses_what_stripes_library_refuses(mangle) -> None:  # type: ignore[no-untyped-def]
    body = provider_fixture("stripe/checkout_session_completed.json")
    headers, sent = mangle(stripe_headers(STRIPE_SECRET, body), body)
    assert not _stripe_ok(headers, sent)
    with pytest.raises(SignatureError):
        _verify("stripe", headers, sent, STRIPE_SECRET)


def test_stripe_refuses_a_timestamp_from_the_future_too() -> None:
    body = b'{"id": "evt_1", "type": "customer.created"}'
    with pytest.raises(SignatureError, match="seconds from now"):
        _verify(
            "stripe", stripe_headers(STRIPE_SECRET, body, at=time.time() + 301), body, STRIPE_SECRET
        )


# --- Zendesk: base64 HMAC over timestamp + body -------------------------------------------


def test_zendesk_signs_the_timestamp_and_the_body() -> None:
    body = provider_fixture("zendesk/ticket_comment_added.json")
    now = dt.datetime.fromtimestamp(time.time(), dt.UTC)
    headers = zendesk_headers(SECRET, body, at=now)
    _verify("zendesk", headers, body)
    swapped = dict(headers, **{"X-Zendesk-Webhook-Signature-Timestamp": "2026-01-01T00:00:00Z"})
    with pytest.raises(SignatureError):
        _verify("zendesk", swapped, body)
    with pytest.raises(SignatureError):
        _verify("zendesk", zendesk_headers("other", body, at=now), body)


@pytest.mark.parametrize("offset", [-301, 301])
def test_zendesk_refuses_an_old_or_future_timestamp(offset: int) -> None:
    body = provider_fixture("zendesk/ticket_comment_added.json")
    at = dt.datetime.fromtimestamp(time.time() + offset, dt.UTC)
    with pytest.raises(SignatureError, match="seconds from now"):
        _verify("zendesk", zendesk_headers(SECRET, body, at=at), body)


def test_zendesk_refuses_a_timestamp_that_is_no_time() -> None:
    body = b"{}"
    headers = zendesk_headers(SECRET, body)
    headers["X-Zendesk-Webhook-Signature-Timestamp"] = "yesterday"
    with pytest.raises(SignatureError, match="ISO 8601"):
        _verify("zendesk", headers, body)


# --- Freshdesk: HTTP Basic ----------------------------------------------------------------


def test_freshdesk_takes_its_generated_credentials_only() -> None:
    credentials = PROVIDERS["freshdesk"].new_credentials()
    user, _, password = credentials.partition(":")
    assert user.startswith("freshdesk-")
    assert len(password) >= 32
    body = provider_fixture("freshdesk/ticket_created.json")
    _verify("freshdesk", freshdesk_headers(credentials), body, credentials)
    for wrong in (f"{user}:{password}x", f"{user}x:{password}", "", ":"):
        with pytest.raises(SignatureError):
            _verify("freshdesk", freshdesk_headers(wrong), body, credentials)
    for header in ("Bearer abc", "Basic !!!", ""):
        with pytest.raises(SignatureError):
            _verify("freshdesk", {"Authorization": header}, body, credentials)
