"""What every provider decides at intake, and the helpers their signature schemes share.

A provider turns one HTTP request, exactly as its sender made it, into a
``Delivery``: verified (``SignatureError`` otherwise), with the delivery id that
makes it idempotent, the kind it becomes and the provider's own topic. The body
is never rewritten here: the worker maps the stored bytes into the kind's payload.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import hmac
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol
from urllib.parse import urlsplit, urlunsplit

from crm_core.base.signing import SignatureError
from crm_core.errors import FieldError, InvalidInput
from crm_core.payloads.json_body import JSON_TYPE, parse_json_body
from crm_core.payloads.kinds import EventKind, ProviderName

__all__ = [
    "Delivery",
    "Headers",
    "Provider",
    "ProviderRequest",
    "SignatureError",
    "basic_credentials",
    "body_digest_id",
    "check_basic",
    "hmac_sha256",
    "matches_any",
    "signed_by_any",
    "url_with_credentials",
]

# Bounds on what a sender may put in a header we read, so a hostile header costs nothing.
MAX_HEADER = 4096
MAX_ID = 255


class Headers(Protocol):
    """Request headers, looked up case-insensitively (werkzeug's headers are)."""

    def get(self, key: str, /) -> str | None: ...


@dataclass(frozen=True)
class ProviderRequest:
    """One request as its sender made it: headers, raw body and media type."""

    headers: Headers
    body: bytes
    media_type: str

    def header(self, name: str) -> str | None:
        """A header's value, ``None`` when absent, empty or absurdly long."""
        value = self.headers.get(name)
        if not value or len(value) > MAX_HEADER:
            return None
        return value


@dataclass(frozen=True)
class Delivery:
    """A verified request, ready for the inbox."""

    webhook_id: str
    kind: EventKind
    topic: str | None
    # False for a topic the platform does not handle: stored as ``ignored``.
    handled: bool
    headers: dict[str, str] = field(default_factory=dict)
    # Set when the body lacks what the intake needs (no id, not JSON): stored as ``invalid``.
    errors: list[FieldError] | None = None


class Provider:
    """The base of every provider: subclasses set the class attributes and two methods."""

    name: ClassVar[ProviderName]
    label: ClassVar[str]
    # The provider issues the signing secret; it is given to ``crm sources add --secret``.
    takes_secret: ClassVar[bool] = True
    # False for a sender that signs nothing (a browser posting a web form): no secret at all.
    signed: ClassVar[bool] = True
    # The kind of the topics the platform handles; any other topic is ignored.
    topics: ClassVar[Mapping[str, EventKind]] = {}
    # Ignored topics are filed under the provider's main kind; their topic says what they were.
    home_kind: ClassVar[EventKind]
    media_types: ClassVar[tuple[str, ...]] = (JSON_TYPE,)
    # Headers stored with the event besides the body (never signatures or credentials).
    kept_headers: ClassVar[tuple[str, ...]] = ()
    # An e-mail provider posts whole messages: its bodies may be as large as an e-mail.
    carries_mail: ClassVar[bool] = False
    # The provider signs with a private key whose public half a source is given (SendGrid).
    takes_public_key: ClassVar[bool] = False

    def verify(
        self, request: ProviderRequest, *, secrets: Iterable[str], now: float, tolerance: int
    ) -> None:
        """Raise ``SignatureError`` unless one of ``secrets`` signed this request."""
        raise NotImplementedError

    def classify(self, request: ProviderRequest, *, max_depth: int) -> Delivery:
        """The delivery id, kind and topic of a verified request."""
        raise NotImplementedError

    def configured(self, mapping: dict[str, Any] | None) -> Provider:
        """This provider reading a source whose stored mapping is ``mapping``.

        Most providers read every source alike; the ``custom`` one is its mapping file.
        """
        return self

    def keyed(self, public_key: str | None) -> Provider:
        """This provider verifying with a source's stored ``public_key``; most take none."""
        return self

    def checked_public_key(self, public_key: str) -> str:
        """``public_key`` as a source of this provider stores it; ``InvalidInput`` when wrong."""
        raise InvalidInput(
            [FieldError(("public_key",), f"{self.label} sources take no public key")]
        )

    def checked_mapping(self, mapping: dict[str, Any] | None) -> dict[str, Any] | None:
        """``mapping`` as a source of this provider stores it; ``InvalidInput`` when wrong."""
        if mapping is not None:
            raise InvalidInput([FieldError(("mapping",), f"{self.label} sources take no mapping")])
        return None

    def kind_of(self, topic: str | None) -> EventKind | None:
        """The kind a handled ``topic`` becomes; ``None`` for a topic the platform ignores."""
        return self.topics.get(topic or "")

    def main_kind(self) -> EventKind:
        """The kind ignored topics are filed under."""
        return self.home_kind

    def kept_header_names(self) -> tuple[str, ...]:
        """Headers stored with the event besides the body."""
        return self.kept_headers

    def receive(
        self,
        request: ProviderRequest,
        *,
        secrets: Iterable[str],
        now: float,
        tolerance: int,
        max_depth: int,
    ) -> Delivery | None:
        """Verify, then classify; ``None`` for a ping (nothing to store)."""
        if self.is_ping(request):
            return None
        self.verify(request, secrets=secrets, now=now, tolerance=tolerance)
        return self.classify(request, max_depth=max_depth)

    def is_ping(self, request: ProviderRequest) -> bool:
        """A provider's unsigned reachability check, answered 200 and never stored."""
        return False

    def setup_steps(self, endpoint: str) -> list[str]:
        """What to click in the provider and what to paste, ending with ``endpoint``."""
        raise NotImplementedError

    def new_credentials(self) -> str:
        """A generated secret, for providers that do not issue their own."""
        raise NotImplementedError(f"{self.label} issues its own signing secret")

    def endpoint(self, base_url: str, source: str, secret: str | None = None) -> str:
        """The URL to paste into the provider for ``source``."""
        return f"{base_url.rstrip('/')}/webhooks/{source}"

    # --- helpers for subclasses --------------------------------------------------------

    def delivery(
        self,
        request: ProviderRequest,
        *,
        webhook_id: str | None,
        topic: str | None,
        id_field: str,
        errors: list[FieldError] | None = None,
    ) -> Delivery:
        """A delivery for ``topic``; without a usable id it is keyed by the body and invalid."""
        kept = {
            name.lower(): value
            for name in self.kept_header_names()
            if (value := request.header(name))
        }
        kind = self.kind_of(topic)
        errors = list(errors or [])
        if not webhook_id or len(webhook_id) > MAX_ID or not webhook_id.isprintable():
            if not errors:
                errors.append(FieldError((id_field,), "a delivery id is required", "missing"))
            webhook_id = body_digest_id(request.body)
        return Delivery(
            webhook_id=webhook_id,
            kind=kind or self.main_kind(),
            topic=topic[:255] if topic else None,
            handled=kind is not None,
            headers=kept,
            errors=errors or None,
        )

    def delivery_from_body(
        self, request: ProviderRequest, *, max_depth: int, id_key: str, type_key: str
    ) -> Delivery:
        """A delivery whose id and topic are fields of the JSON body (Stripe, Zendesk, Typeform)."""
        document = self.parse(request, max_depth=max_depth)
        if not isinstance(document, dict):
            return self.delivery(
                request, webhook_id=None, topic=None, id_field=id_key, errors=[document]
            )
        event_id, event_type = document.get(id_key), document.get(type_key)
        return self.delivery(
            request,
            webhook_id=event_id if isinstance(event_id, str) else None,
            topic=event_type if isinstance(event_type, str) else None,
            id_field=id_key,
        )

    def parse(self, request: ProviderRequest, *, max_depth: int) -> dict[str, Any] | FieldError:
        """The body's JSON object, parsed once, or the error that prevents it."""
        try:
            document = parse_json_body(request.body, max_depth=max_depth)
        except ValueError as exc:
            return FieldError(("body",), str(exc), "json_invalid")
        if not isinstance(document, dict):
            return FieldError(("body",), "the body must be a JSON object", "model_type")
        return document


def hmac_sha256(secret: str, *parts: bytes) -> bytes:
    """HMAC-SHA256 of ``parts`` concatenated, keyed with the secret's UTF-8 bytes."""
    mac = hmac.new(secret.encode("utf-8"), digestmod=hashlib.sha256)
    for part in parts:
        mac.update(part)
    return mac.digest()


def matches_any(expected: bytes, candidates: Iterable[bytes]) -> bool:
    """Whether any candidate equals ``expected``, each compared in constant time."""
    matched = False
    for candidate in candidates:
        matched |= hmac.compare_digest(expected, candidate)
    return matched


def signed_by_any(secrets: Iterable[str], signature: bytes, *parts: bytes) -> bool:
    """Whether HMAC-SHA256 of ``parts`` under any of ``secrets`` is ``signature``."""
    return any(hmac.compare_digest(hmac_sha256(s, *parts), signature) for s in secrets)


def decode_base64(value: str | None, *, header: str) -> bytes:
    """The bytes of a base64 signature header; ``SignatureError`` when missing or malformed."""
    if not value:
        raise SignatureError(f"missing {header} header")
    try:
        return base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise SignatureError(f"{header} is not valid base64") from None


def check_age(sent_at: dt.datetime | float, *, now: float, tolerance: int, header: str) -> None:
    """Refuse a signature made more than ``tolerance`` seconds from now, either way."""
    when = sent_at.timestamp() if isinstance(sent_at, dt.datetime) else sent_at
    if abs(when - now) > tolerance:
        raise SignatureError(f"{header} is more than {tolerance} seconds from now")


def basic_credentials(header: str | None) -> bytes:
    """The ``user:password`` bytes of an ``Authorization: Basic`` header."""
    if not header:
        raise SignatureError("missing Authorization header (HTTP Basic)")
    scheme, _, encoded = header.strip().partition(" ")
    if scheme.lower() != "basic":
        raise SignatureError("the Authorization header must be HTTP Basic")
    try:
        return base64.b64decode(encoded.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise SignatureError("the Basic credentials are not valid base64") from None


def check_basic(request: ProviderRequest, secrets: Iterable[str]) -> None:
    """Refuse a request whose Basic credentials are none of ``secrets`` (``user:password``)."""
    given = basic_credentials(request.header("Authorization"))
    matched = False
    for expected in secrets:
        matched |= hmac.compare_digest(expected.encode("utf-8"), given)
    if not matched:
        raise SignatureError("the Basic credentials are not this source's")


def url_with_credentials(url: str, secret: str | None) -> str:
    """``url`` carrying ``user:password`` (``secret``) for the provider to send as Basic."""
    if not secret:
        return url
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=f"{secret}@{parts.netloc}"))


def body_digest_id(body: bytes) -> str:
    """A delivery id for a sender that sends none: the same body is the same delivery."""
    return "sha256:" + hashlib.sha256(body).hexdigest()
