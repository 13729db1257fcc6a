"""``POST /webhooks/<source>/<kind>`` and ``POST /webhooks/<source>``: verify, store
durably, acknowledge, then enqueue.

The first is our own format (Standard Webhooks, the kind in the URL); the second
takes a provider's request as the provider sends it, and the source's provider
object (``crm_core.providers``) verifies it and names its delivery id and kind.

The order of checks is the order of cost: the client's budget of failures
(429), the route (404), the media type (415), the source (404, before a byte
of the body is read), the size (413), the signature (401), the source's rate
(429). Only then is anything written; a 2xx means the event is committed. On a
provider's route the media types are the provider's, so they are checked once
the source is known. An unknown source and a bad signature count against the
client address's budget of failures (``webhooks.failure_budget``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Literal, TypeVar

from flask import Blueprint, Response, current_app, jsonify, request
from pydantic import BaseModel
from sqlalchemy.exc import DBAPIError

from crm_core.base.signing import SignatureError, verify
from crm_core.config import Settings
from crm_core.ingestion.inbox import Inbox, StoredEvent
from crm_core.ingestion.models import EventStatus
from crm_core.ingestion.services import SourceCredentials
from crm_core.ingestion.source_cache import SourceCache
from crm_core.ingestion.validation import (
    JSON_TYPE,
    RFC822_TYPE,
    accepted_content_types,
    validate_payload,
)
from crm_core.mail.parsed import MailLimits
from crm_core.ops import logs
from crm_core.payloads.kinds import PROVIDER_ONLY_KINDS, EventKind, ProviderName
from crm_core.payloads.schemas import PAYLOAD_SCHEMAS
from crm_core.providers import PROVIDERS, Delivery, ProviderRequest, get_provider
from webhooks.failure_budget import count_failure, refused_for_failures
from webhooks.openapi.registry import Body, Header, documented
from webhooks.problems import problem
from webhooks.publisher import event_publisher
from webhooks.ratelimit import rate_limiter
from webhooks.state import crm_state
from webhooks.telemetry import note

log = logging.getLogger(__name__)
bp = Blueprint("intake", __name__)
KINDS = frozenset(kind.value for kind in EventKind if kind not in PROVIDER_ONLY_KINDS)
T = TypeVar("T")


class Receipt(BaseModel):
    """The stored event's id and status; ``Location`` is where it can be followed."""

    event_id: int
    status: EventStatus


class Ping(BaseModel):
    """A provider's check that the URL answers: nothing is stored."""

    status: Literal["ok"]


_STORED = {"Location": "``/events/<event_id>``"}
_INTAKE_PROBLEMS = {
    401: "The request is not signed by one of the source's secrets.",
    404: "No such (enabled) source, or the source posts to the other webhook URL.",
    413: "The body is larger than the source's kind takes.",
    415: "The body's media type is not one the kind (or the provider) takes.",
    429: "Too many requests from this source, or too many failures from this client.",
    503: "The inbox is unavailable: nothing was stored; retry.",
}
# The kind in the URL says which payload it is.
_PAYLOADS = Body(
    tuple(PAYLOAD_SCHEMAS.values()),
    description="The kind's payload as JSON (``emails`` also as a raw ``message/rfc822``).",
)
_SIGNED = (
    Header("webhook-id", "The delivery's id: a redelivery with the same id is a no-op.", True),
    Header("webhook-timestamp", "Unix seconds when it was signed.", True),
    Header("webhook-signature", "``v1,<base64 HMAC-SHA256>`` of ``id.timestamp.body``.", True),
)


class Refused(Exception):
    """A request answered with a problem document before anything was stored."""

    def __init__(self, response: Response) -> None:
        self.response = response


class Unsigned(Refused):
    """The request is not signed by the source's credentials as this process knows them."""


@bp.post("/webhooks/<source_name>/<kind>")
@documented(
    summary="Receive a signed webhook (Standard Webhooks), the kind in the URL",
    request=Body(
        _PAYLOADS.schema,
        media_types=(JSON_TYPE, RFC822_TYPE),
        description=_PAYLOADS.description,
    ),
    headers=_SIGNED,
    path={"kind": {"type": "string", "enum": sorted(KINDS)}},
    responses={
        200: Body(Receipt, description="Received before (a redelivery).", headers=_STORED),
        202: Body(Receipt, description="Stored; it is processed shortly.", headers=_STORED),
        **_INTAKE_PROBLEMS,
        422: "Stored as ``invalid`` with its ``errors``; replayable once fixed.",
    },
    tags=("webhooks",),
)
def receive(source_name: str, kind: str) -> Response:
    """Accept one signed webhook: 202 when new, 200 when already received."""
    settings: Settings = crm_state().settings
    try:
        check_failures()
        if kind not in KINDS:
            raise Refused(problem(404, f"Unknown kind {kind[:40]!r}.", type_="unknown-kind"))
        note(kind=kind)
        content_type = _check_content_type(kind)
        # No ORM session and no transaction of its own: this is the hottest
        # path there is. The inbox stores the event with one statement that is
        # committed when it returns (crm_core.ingestion.inbox).
        inbox: Inbox = crm_state().inbox
        name = source_name[:80]
        source, cached = known_source(inbox, name)
        body = read_body(limit=_size_limit(kind, settings))
        source, _ = _verified(
            inbox, name, source, cached, lambda s: _check_signature(s, body, settings)
        )
        check_rate(source)
        stored = _store(inbox, source, kind, content_type, body, settings)
    except Refused as refused:
        return refused.response
    except DBAPIError as exc:
        return unavailable(exc)
    return acknowledge(stored)


@bp.post("/webhooks/<source_name>")
@documented(
    summary="Receive a provider's webhook as the provider sends it",
    request=Body(
        {},
        media_types=(JSON_TYPE, "application/x-www-form-urlencoded", "multipart/form-data"),
        description="The provider's own body; the source's provider verifies it.",
    ),
    responses={
        200: Body((Receipt, Ping), description="Received before, or the provider's ping."),
        202: Body(Receipt, description="Stored (``ignored`` when not handled).", headers=_STORED),
        **_INTAKE_PROBLEMS,
    },
    tags=("webhooks",),
)
def receive_from_provider(source_name: str) -> Response:
    """Accept one provider's webhook as it sends it: 202 new (``ignored`` too), 200 again."""
    settings: Settings = crm_state().settings
    try:
        check_failures()
        inbox: Inbox = crm_state().inbox
        name = source_name[:80]
        source, cached = known_source(inbox, name)
        message = ProviderRequest(
            request.headers, read_body(limit=_provider_limit(source, settings)), request.mimetype
        )
        source, delivery = _verified(
            inbox, name, source, cached, lambda s: _receive(s, message, settings)
        )
        if delivery is None:  # the provider's ping: it wants a plain 200, nothing stored
            return jsonify(status="ok")
        note(kind=delivery.kind)
        check_rate(source)
        stored = inbox.store(
            source_id=source.id,
            kind=delivery.kind,
            webhook_id=delivery.webhook_id,
            content_type=(request.content_type or request.mimetype)[:255],
            body=message.body,
            headers={**delivery.headers, "user-agent": request.headers.get("User-Agent", "")[:255]},
            errors=delivery.errors,
            topic=delivery.topic,
            ignored=not delivery.handled,
        )
    except Refused as refused:
        return refused.response
    except DBAPIError as exc:
        return unavailable(exc)
    return acknowledge(stored)


def unavailable(exc: DBAPIError) -> Response:
    """The record is unreachable: nothing was stored, so the sender must retry."""
    log.warning("intake could not reach the database: %s", type(exc.orig or exc).__name__)
    return problem(
        503,
        "The inbox is unavailable; nothing was stored. Retry later.",
        type_="inbox-unavailable",
        headers={"Retry-After": "5"},
    )


def acknowledge(stored: StoredEvent) -> Response:
    """Publish a new event, then answer."""
    publish_new(stored)
    return _answer(stored)


def publish_new(stored: StoredEvent) -> None:
    """Hand a new event to the broker.

    Published only after the commit, off the request thread: a slow or dead
    broker never delays the answer, and the sweeper publishes what this misses.
    """
    note(event_id=stored.id)
    if stored.created and stored.status == EventStatus.RECEIVED:
        event_publisher().submit(stored.id, logs.current("request_id"))


def _receive(
    source: SourceCredentials, message: ProviderRequest, settings: Settings
) -> Delivery | None:
    """The source's provider verifies and classifies the request (401 when unsigned)."""
    try:
        provider = get_provider(source.provider, source.mapping, source.public_key)
    except ValueError:  # a stored key was checked when it was set: it can only have been edited
        log.error("source %s has a public key its provider cannot load", source.id)
        raise Unsigned(
            problem(401, "The source's public key cannot be loaded.", type_="invalid-signature")
        ) from None
    if provider.name == ProviderName.STANDARD:
        detail = "This source posts to /webhooks/<source>/<kind> with Standard Webhooks headers."
        raise Refused(problem(404, detail, type_="wrong-endpoint"))
    if not provider.signed:  # a web form's protections are on its own route
        detail = "This source is a web form: browsers post it to /forms/<source>."
        raise Refused(problem(404, detail, type_="wrong-endpoint"))
    if message.media_type not in provider.media_types:
        accepted = [t for t in provider.media_types if t]
        detail = f"{provider.label} requests are sent as {' or '.join(accepted)}."
        raise Refused(problem(415, detail, type_="unsupported-media-type", accepted=accepted))
    try:
        return provider.receive(
            message,
            secrets=source.secrets,
            now=time.time(),
            tolerance=settings.signature_tolerance_seconds,
            max_depth=settings.max_json_depth,
        )
    except SignatureError as exc:
        raise Unsigned(problem(401, str(exc), type_="invalid-signature")) from None


def _provider_limit(source: SourceCredentials, settings: Settings) -> int:
    """An e-mail provider's posts may be as large as an e-mail; every other's is JSON."""
    provider = PROVIDERS.get(source.provider)
    carries_mail = provider is not None and provider.carries_mail
    return settings.max_email_bytes if carries_mail else settings.max_json_bytes


def _size_limit(kind: str, settings: Settings) -> int:
    return settings.max_email_bytes if kind == EventKind.EMAILS else settings.max_json_bytes


def _check_content_type(kind: str) -> str:
    accepted = accepted_content_types(kind)
    if request.mimetype not in accepted:
        detail = f"{kind} must be sent as {' or '.join(accepted)}."
        raise Refused(problem(415, detail, type_="unsupported-media-type", accepted=accepted))
    return (request.content_type or request.mimetype)[:255]


def read_body(*, limit: int) -> bytes:
    """The raw body, refusing more than ``limit`` bytes by header or by what arrives."""
    if request.content_length is not None and request.content_length > limit:
        raise _too_large(limit)
    request.max_content_length = limit + 1  # this limit, not the app's MAX_CONTENT_LENGTH
    body = request.stream.read(limit + 1)
    if len(body) > limit:
        raise _too_large(limit)
    return body


def _too_large(limit: int) -> Refused:
    return Refused(
        problem(413, f"The body exceeds {limit} bytes.", type_="payload-too-large", limit=limit)
    )


def _source_cache() -> SourceCache:
    crm = current_app.extensions
    if "crm.source_cache" not in crm:
        crm["crm.source_cache"] = SourceCache(ttl=crm["crm"].settings.source_cache_seconds)
    cache: SourceCache = crm["crm.source_cache"]
    return cache


def _load_source(inbox: Inbox, name: str) -> SourceCredentials:
    """The enabled source ``name``; a disabled one is as unknown as a missing one (404)."""
    source = inbox.source(name)
    if source is None or not source.enabled:
        raise Refused(count_failure(problem(404, "Unknown source.", type_="unknown-source")))
    _source_cache().put(name, source)
    return source


def known_source(inbox: Inbox, name: str) -> tuple[SourceCredentials, bool]:
    """The source, from the cache when it is there (then ``True``), else from the database."""
    cached = _source_cache().get(name)
    source = cached or _load_source(inbox, name)
    note(source=name)  # known now: a label of the webhook metrics and the log lines
    return source, cached is not None


def _verified(
    inbox: Inbox,
    name: str,
    source: SourceCredentials,
    cached: bool,
    check: Callable[[SourceCredentials], T],
) -> tuple[SourceCredentials, T]:
    """The source and what ``check`` made of the request.

    When cached credentials do not verify, the database is asked once more (a
    secret may have rotated since). A final ``Unsigned`` counts against the
    client's budget of failures.
    """
    try:
        return source, check(source)
    except Unsigned as unsigned:
        if not cached:
            raise Refused(count_failure(unsigned.response)) from None
    source = _load_source(inbox, name)
    try:
        return source, check(source)
    except Unsigned as unsigned:
        raise Refused(count_failure(unsigned.response)) from None


def _check_signature(source: SourceCredentials, body: bytes, settings: Settings) -> None:
    """A 401 (``Unsigned``) unless one of the source's secrets signed the request."""
    if source.provider != ProviderName.STANDARD:
        detail = "This source's provider posts to /webhooks/<source> (no kind in the URL)."
        raise Refused(problem(404, detail, type_="wrong-endpoint"))
    try:
        verify(
            source.secrets,
            msg_id=request.headers.get("webhook-id"),
            timestamp=request.headers.get("webhook-timestamp"),
            signature=request.headers.get("webhook-signature"),
            body=body,
            tolerance=settings.signature_tolerance_seconds,
        )
    except SignatureError as exc:
        raise Unsigned(problem(401, str(exc), type_="invalid-signature")) from None


def check_failures() -> None:
    refusal = refused_for_failures()
    if refusal is not None:
        raise Refused(refusal)


def check_rate(source: SourceCredentials) -> None:
    wait = rate_limiter().retry_after(source.id, source.rate_limit_per_minute)
    if wait is not None:
        detail = f"Too many requests from this source; retry in {wait} s."
        raise Refused(
            problem(429, detail, type_="rate-limited", headers={"Retry-After": str(wait)})
        )


def _store(
    inbox: Inbox,
    source: SourceCredentials,
    kind: str,
    content_type: str,
    body: bytes,
    settings: Settings,
) -> StoredEvent:
    """Validate, then store: an invalid payload is kept too, as ``invalid`` with its errors."""
    outcome = validate_payload(
        kind,
        body,
        content_type,
        max_depth=settings.max_json_depth,
        mail_limits=MailLimits.from_settings(settings),
    )
    headers = {
        "webhook-timestamp": request.headers.get("webhook-timestamp", ""),
        "user-agent": request.headers.get("User-Agent", "")[:255],
    }
    return inbox.store(
        source_id=source.id,
        kind=kind,
        webhook_id=request.headers["webhook-id"],
        content_type=content_type,
        body=body,
        headers=headers,
        errors=outcome.errors or None,
    )


def _answer(event: StoredEvent) -> Response:
    """202 for a new event, 200 for a redelivery; 422 again for an invalid one."""
    location = f"/events/{event.id}"
    if event.status == EventStatus.INVALID:
        return problem(
            422,
            "The payload failed validation; it is stored and can be replayed once fixed.",
            type_="invalid-payload",
            headers={"Location": location},
            event_id=event.id,
            errors=event.errors or [],
        )
    response = jsonify(event_id=event.id, status=event.status)
    response.status_code = 202 if event.created else 200
    response.headers["Location"] = location
    return response
