"""Stripe: ``Stripe-Signature: t=<unix time>,v1=<hex>[,v1=<hex>…]``.

Each ``v1`` is hex(HMAC-SHA256(endpoint secret, "<t>.<raw body>")), keyed with
the whole ``whsec_…`` string as Stripe's libraries do; any one matching passes
(Stripe sends two while an endpoint secret is being rolled), and ``t`` must be
within the tolerance of now. The event's ``id`` and ``type`` are in the body,
which is parsed once for them.
"""

from __future__ import annotations

from collections.abc import Iterable

from crm_core.payloads.kinds import EventKind, ProviderName
from crm_core.providers.base import (
    Delivery,
    Provider,
    ProviderRequest,
    SignatureError,
    check_age,
    hmac_sha256,
    matches_any,
)

SIGNATURE = "Stripe-Signature"
MAX_SIGNATURES = 16


class Stripe(Provider):
    name = ProviderName.STRIPE
    label = "Stripe"
    topics = {
        "checkout.session.completed": EventKind.ORDERS,
        "invoice.paid": EventKind.ORDERS,
        "charge.refunded": EventKind.ORDERS,
        "customer.created": EventKind.LEADS,
        "customer.updated": EventKind.LEADS,
    }
    home_kind = EventKind.ORDERS

    def verify(
        self, request: ProviderRequest, *, secrets: Iterable[str], now: float, tolerance: int
    ) -> None:
        timestamp, candidates = _parse_header(request.header(SIGNATURE))
        check_age(int(timestamp), now=now, tolerance=tolerance, header=f"{SIGNATURE} t")
        signed = timestamp.encode("ascii") + b"."
        for secret in secrets:
            expected = hmac_sha256(secret, signed, request.body).hex().encode("ascii")
            if matches_any(expected, candidates):
                return
        raise SignatureError(f"no v1 signature in {SIGNATURE} matches the body")

    def classify(self, request: ProviderRequest, *, max_depth: int) -> Delivery:
        return self.delivery_from_body(request, max_depth=max_depth, id_key="id", type_key="type")

    def setup_steps(self, endpoint: str) -> list[str]:
        return [
            "In the Stripe Dashboard: Developers > Webhooks > Add endpoint, and select"
            " these events:",
            "  " + ", ".join(self.topics),
            "Give this source the endpoint's Signing secret (whsec_…, under Reveal).",
            "Paste this URL as the Endpoint URL:",
            endpoint,
        ]


def _parse_header(header: str | None) -> tuple[str, list[bytes]]:
    """The timestamp and the v1 signatures of a ``Stripe-Signature`` header."""
    if not header:
        raise SignatureError(f"missing {SIGNATURE} header")
    timestamp = None
    candidates = []
    for item in header.split(","):
        key, equals, value = item.strip().partition("=")
        if not equals:
            raise SignatureError(f"{SIGNATURE} must look like 't=…,v1=…'")
        if key == "t":
            timestamp = value
        elif key == "v1":
            candidates.append(value.lower().encode("ascii", "replace"))
    if (
        timestamp is None
        or not timestamp.isascii()
        or not timestamp.isdigit()
        or len(timestamp) > 12
    ):
        raise SignatureError(f"{SIGNATURE} has no timestamp t=<seconds>")
    if not candidates:
        raise SignatureError(f"{SIGNATURE} has no v1 signature")
    if len(candidates) > MAX_SIGNATURES:
        raise SignatureError(f"more than {MAX_SIGNATURES} signatures")
    return timestamp, candidates
