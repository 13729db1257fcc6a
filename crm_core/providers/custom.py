"""Any JSON sender, as its source's mapping file describes it (``custom_spec``).

The signature is ``prefix`` + hex or base64 of HMAC-SHA256 (or SHA-1), keyed
with the secret's UTF-8 bytes, over the raw body, or over a joined form of a
signed timestamp header and the body (``{timestamp}.{body}``). The delivery id
and the topic are a header or a JSON Pointer into the body, which is then
parsed once for them.
"""

from __future__ import annotations

import datetime as dt
import hmac
from collections.abc import Iterable
from typing import Any

from jsonpointer import EndOfList, resolve_pointer

from crm_core.errors import FieldError, InvalidInput
from crm_core.payloads.kinds import EventKind, ProviderName
from crm_core.providers.base import (
    Delivery,
    Provider,
    ProviderRequest,
    SignatureError,
    check_age,
    decode_base64,
)
from crm_core.providers.custom_spec import (
    CustomMapping,
    Encoding,
    Locator,
    Signature,
    SignedTimestamp,
    mapping_from_document,
)

_MISSING = object()


class Custom(Provider):
    name = ProviderName.CUSTOM
    label = "Custom JSON sender"
    home_kind = EventKind.LEADS

    def __init__(self, mapping: CustomMapping | None = None) -> None:
        self.mapping = mapping

    def configured(self, mapping: dict[str, Any] | None) -> Custom:
        if mapping is None:
            return Custom()
        try:
            return Custom(mapping_from_document(mapping))
        except InvalidInput:
            # Checked when it was stored: a mapping that no longer reads is no mapping.
            return Custom()

    def checked_mapping(self, mapping: dict[str, Any] | None) -> dict[str, Any] | None:
        if mapping is None:
            message = "a custom source needs a mapping file (--mapping FILE.toml)"
            raise InvalidInput([FieldError(("mapping",), message, "missing")])
        return mapping_from_document(mapping).model_dump(mode="json")

    def kind_of(self, topic: str | None) -> EventKind | None:
        if self.mapping is None:
            return None
        spec = self.mapping.topic
        if spec is None or spec.handled is None or topic in spec.handled:
            return self.mapping.kind
        return None

    def main_kind(self) -> EventKind:
        return self.mapping.kind if self.mapping else self.home_kind

    def kept_header_names(self) -> tuple[str, ...]:
        if self.mapping is None:
            return ()
        places = [self.mapping.delivery_id, self.mapping.topic, self.mapping.signature.timestamp]
        return tuple(place.header for place in places if place is not None and place.header)

    def verify(
        self, request: ProviderRequest, *, secrets: Iterable[str], now: float, tolerance: int
    ) -> None:
        if self.mapping is None:
            raise SignatureError("this source has no mapping file; set one with crm sources")
        signature = self.mapping.signature
        given = _signature_bytes(request.header(signature.header), signature)
        message = request.body
        if signature.timestamp is not None:
            message = _timestamped(request, signature.timestamp, now=now, tolerance=tolerance)
        digests = (
            hmac.new(secret.encode("utf-8"), message, signature.algorithm.value).digest()
            for secret in secrets
        )
        if not any(hmac.compare_digest(digest, given) for digest in digests):
            raise SignatureError(f"{signature.header} does not match the body")

    def classify(self, request: ProviderRequest, *, max_depth: int) -> Delivery:
        if self.mapping is None:
            error = FieldError(("mapping",), "this source has no mapping file", "missing")
            return self.delivery(
                request, webhook_id=None, topic=None, id_field="id", errors=[error]
            )
        id_place, topic_place = self.mapping.delivery_id, self.mapping.topic
        document: Any = None
        if id_place.pointer is not None or (topic_place and topic_place.pointer is not None):
            document = self.parse(request, max_depth=max_depth)
            if isinstance(document, FieldError):
                return self.delivery(
                    request, webhook_id=None, topic=None, id_field=id_place.name, errors=[document]
                )
        return self.delivery(
            request,
            webhook_id=_read(id_place, request, document),
            topic=_read(topic_place, request, document) if topic_place else None,
            id_field=id_place.name,
        )

    def setup_steps(self, endpoint: str) -> list[str]:
        if self.mapping is None:
            return ["Describe the sender in a mapping file (docs/providers/custom.md).", endpoint]
        signature = self.mapping.signature
        scheme = f"HMAC-{signature.algorithm.value.upper()}, {signature.encoding.value}"
        signed = signature.timestamp.signed if signature.timestamp else "{body}"
        return [
            f"In the sender: post each {self.mapping.kind.value[:-1]} as JSON to the URL below.",
            f"Sign it with this source's secret: {signature.header}: {signature.prefix}<{scheme}"
            f" of {signed}>.",
            f"Send the delivery id in {self.mapping.delivery_id.name}.",
            endpoint,
        ]


def _signature_bytes(value: str | None, signature: Signature) -> bytes:
    """The digest a signature header carries; ``SignatureError`` when missing or malformed."""
    if value is None:
        raise SignatureError(f"missing {signature.header} header")
    if not value.startswith(signature.prefix):
        raise SignatureError(f"{signature.header} must start with {signature.prefix!r}")
    encoded = value.removeprefix(signature.prefix).strip()
    if signature.encoding == Encoding.BASE64:
        return decode_base64(encoded, header=signature.header)
    try:
        return bytes.fromhex(encoded) if encoded else b""
    except ValueError:
        raise SignatureError(f"{signature.header} is not hexadecimal") from None


def _timestamped(
    request: ProviderRequest, spec: SignedTimestamp, *, now: float, tolerance: int
) -> bytes:
    """The signed form of a timestamped request, once its timestamp is within tolerance."""
    value = request.header(spec.header)
    if value is None:
        raise SignatureError(f"missing {spec.header} header")
    check_age(
        _instant(value, spec), now=now, tolerance=spec.tolerance or tolerance, header=spec.header
    )
    return spec.message(value, request.body)


def _instant(value: str, spec: SignedTimestamp) -> float:
    try:
        if spec.format == "unix":
            if not value.isascii() or not value.isdigit() or len(value) > 12:
                raise ValueError(value)
            return float(int(value))
        when = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise SignatureError(f"{spec.header} is not a {spec.format} timestamp") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return when.timestamp()


def _read(place: Locator, request: ProviderRequest, document: Any) -> str | None:
    """A header's value, or the string or integer at a pointer into the body."""
    if place.header is not None:
        return request.header(place.header)
    value = resolve_pointer(document, place.pointer or "", _MISSING)
    if isinstance(value, bool | EndOfList):
        return None
    if isinstance(value, int):
        return str(value)
    return value if isinstance(value, str) else None
