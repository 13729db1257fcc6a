"""Typeform: ``Typeform-Signature: sha256=`` + base64(HMAC-SHA256(webhook secret, raw body)).

A submission is ``event_type`` ``form_response``, identified by ``event_id``;
both are in the body, which is parsed once for them.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from crm_core.payloads.kinds import EventKind, ProviderName
from crm_core.providers.base import (
    Delivery,
    Provider,
    ProviderRequest,
    SignatureError,
    decode_base64,
    signed_by_any,
)
from crm_core.providers.typeform_mapping import checked_mapping

SIGNATURE = "Typeform-Signature"
PREFIX = "sha256="


class Typeform(Provider):
    name = ProviderName.TYPEFORM
    label = "Typeform"
    topics = {"form_response": EventKind.LEADS}
    home_kind = EventKind.LEADS

    def verify(
        self, request: ProviderRequest, *, secrets: Iterable[str], now: float, tolerance: int
    ) -> None:
        header = request.header(SIGNATURE)
        if header is not None and not header.startswith(PREFIX):
            raise SignatureError(f"{SIGNATURE} must start with {PREFIX!r}")
        signature = decode_base64(header and header.removeprefix(PREFIX), header=SIGNATURE)
        if not signed_by_any(secrets, signature, request.body):
            raise SignatureError(f"{SIGNATURE} does not match the body")

    def checked_mapping(self, mapping: dict[str, Any] | None) -> dict[str, Any] | None:
        return None if mapping is None else checked_mapping(mapping)

    def classify(self, request: ProviderRequest, *, max_depth: int) -> Delivery:
        return self.delivery_from_body(
            request, max_depth=max_depth, id_key="event_id", type_key="event_type"
        )

    def setup_steps(self, endpoint: str) -> list[str]:
        return [
            "In Typeform: open the form > Connect > Webhooks > Add a webhook.",
            "Paste the URL below as the Endpoint, then Edit the webhook: turn on Secret,"
            " type a long random secret there and give this source the same secret.",
            "Turn the webhook on (submissions arrive as form_response).",
            endpoint,
        ]
