"""Posting owed notifications: signed, time-limited, retried with backoff, never redirected.

Each delivery is claimed by pushing its next attempt a lease into the future
(committed before the POST), so two workers never post it at once and a worker
that dies mid-POST leaves it to be tried again when the lease runs out. A
receiver may therefore see a delivery twice; ``webhook-id`` is the same on
every attempt, so it can tell (Standard Webhooks' at-least-once contract).

Before each POST the URL's host is resolved and every address checked: a
private, loopback, link-local, multicast or reserved target is refused unless
explicitly allowed (``CRM_NOTIFY_ALLOW_PRIVATE``), so a subscription cannot be
used to reach the platform's own network. The POST then goes to the address
that was checked, never to the name again (``crm_core.pinned_http``), and the
answer's body is not read. Whatever an attempt raises is recorded on that
delivery as a failed attempt; the rest of the batch goes on.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import requests
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from crm_core.backoff import backoff_delay
from crm_core.base.signing import sign
from crm_core.db import utcnow
from crm_core.errors import failure_trace
from crm_core.notifications.models import (
    DeliveryAttempt,
    DeliveryStatus,
    NotificationDelivery,
    Subscription,
)
from crm_core.pinned_http import Origin, PinnedSession, Resolver, resolve, retry_after_seconds

log = logging.getLogger(__name__)

# Answers worth trying again: the receiver is busy or broken for now.
RETRYABLE_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})
USER_AGENT = "crm-platform-notifications/1"
MAX_ERROR_CHARS = 500


@dataclass(frozen=True)
class SendSettings:
    allow_private: bool = False
    connect_timeout: float = 5.0
    read_timeout: float = 10.0
    max_attempts: int = 8
    backoff_base: float = 2.0
    backoff_max: float = 3600.0
    lease_seconds: float = 120.0


class UnsafeTarget(Exception):
    """The URL resolves to an address notifications must not be sent to."""


def check_target(url: str, *, allow_private: bool, resolver: Resolver = resolve) -> list[str]:
    """The addresses of the URL's host; ``UnsafeTarget`` unless every one is a public address.

    The caller connects to one of these, never to the name (``PinnedSession``):
    a second lookup could answer differently (DNS rebinding).
    """
    try:
        origin = Origin.of(url)
    except ValueError as exc:
        raise UnsafeTarget(str(exc)) from None
    try:
        addresses = resolver(origin.host, origin.port)
    except OSError as exc:
        raise ConnectionError(f"cannot resolve {origin.host}: {exc}") from exc
    if not addresses:
        raise ConnectionError(f"cannot resolve {origin.host}: no address")
    if allow_private:
        return addresses
    for address in addresses:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
        if not ip.is_global or ip.is_multicast or ip.is_reserved:
            raise UnsafeTarget(f"{origin.host} resolves to {ip}, which is not a public address")
    return addresses


def claim_due(
    session: Session, *, now: dt.datetime, limit: int = 100, lease_seconds: float = 120.0
) -> list[int]:
    """Take up to ``limit`` deliveries that are due; commit before sending them."""
    ids = list(
        session.scalars(
            select(NotificationDelivery.id)
            .where(
                NotificationDelivery.status == DeliveryStatus.PENDING,
                NotificationDelivery.next_attempt_at <= now,
            )
            .order_by(NotificationDelivery.next_attempt_at, NotificationDelivery.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
    )
    if ids:
        session.execute(
            update(NotificationDelivery)
            .where(NotificationDelivery.id.in_(ids))
            .values(next_attempt_at=now + dt.timedelta(seconds=lease_seconds))
        )
    return ids


@dataclass(frozen=True)
class Request:
    url: str
    body: bytes
    headers: dict[str, str]


def build_request(
    delivery: NotificationDelivery, subscription: Subscription, *, now: float
) -> Request:
    """The signed POST of one delivery; ``webhook-id`` is the same on every attempt."""
    body = json.dumps(delivery.payload, separators=(",", ":"), sort_keys=True).encode()
    msg_id = f"msg_{delivery.id}"
    timestamp = int(now)
    headers = {
        "content-type": "application/json",
        "user-agent": USER_AGENT,
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(
            subscription.secret, msg_id=msg_id, timestamp=timestamp, body=body
        ),
    }
    return Request(subscription.url, body, headers)


@dataclass(frozen=True)
class AttemptResult:
    status_code: int | None
    error: str | None
    retryable: bool
    retry_after: float | None = None

    @property
    def delivered(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


Poster = Callable[[Request, SendSettings], AttemptResult]


def post(
    request: Request, settings: SendSettings, *, resolver: Resolver = resolve
) -> AttemptResult:
    """POST once to the checked address: no redirects, bounded times, the answer's body unread."""
    try:
        addresses = check_target(
            request.url, allow_private=settings.allow_private, resolver=resolver
        )
    except UnsafeTarget as exc:
        return AttemptResult(None, str(exc), retryable=False)
    except ConnectionError as exc:
        return AttemptResult(None, str(exc), retryable=True)
    try:
        # Streamed and closed unread: only the status and headers matter.
        with (
            PinnedSession(Origin.of(request.url), addresses[0]) as session,
            session.post(
                request.url,
                data=request.body,
                headers=request.headers,
                timeout=(settings.connect_timeout, settings.read_timeout),
                allow_redirects=False,
                stream=True,
            ) as response,
        ):
            code, answer_headers = response.status_code, response.headers
    except requests.RequestException as exc:
        return AttemptResult(None, f"{type(exc).__name__}: {exc}", retryable=True)
    if 200 <= code < 300:
        return AttemptResult(code, None, retryable=False)
    if 300 <= code < 400:
        return AttemptResult(
            code, f"redirect to {answer_headers.get('location')!r} not followed", retryable=False
        )
    return AttemptResult(
        code,
        f"answered {code}",
        retryable=code in RETRYABLE_STATUS,
        retry_after=retry_after_seconds(answer_headers.get("retry-after")),
    )


def send_delivery(
    sessions: sessionmaker[Session],
    *,
    delivery_id: int,
    settings: SendSettings,
    poster: Poster = post,
) -> str:
    """One attempt at a claimed delivery; its status afterwards."""
    with sessions() as session:
        delivery = session.get(NotificationDelivery, delivery_id)
        if delivery is None or delivery.status != DeliveryStatus.PENDING:
            return "skipped"
        subscription = session.get(Subscription, delivery.subscription_id)
        if subscription is None:
            return "skipped"
        request = build_request(delivery, subscription, now=time.time())
    started = time.monotonic()
    try:
        result = poster(request, settings)
    except Exception as exc:  # whatever went wrong is this delivery's attempt, not the batch's
        log.error(
            "notification delivery %s: the attempt raised\n%s", delivery_id, failure_trace(exc)
        )
        result = AttemptResult(None, f"{type(exc).__name__}: {exc}", retryable=True)
    duration_ms = int((time.monotonic() - started) * 1000)
    with sessions.begin() as session:
        delivery = session.get(NotificationDelivery, delivery_id, with_for_update=True)
        if delivery is None or delivery.status != DeliveryStatus.PENDING:
            return "skipped"
        return _record(session, delivery, result, duration_ms, settings)


def _record(
    session: Session,
    delivery: NotificationDelivery,
    result: AttemptResult,
    duration_ms: int,
    settings: SendSettings,
) -> str:
    now = utcnow()
    session.add(
        DeliveryAttempt(
            delivery_id=delivery.id,
            attempted_at=now,
            duration_ms=duration_ms,
            status_code=result.status_code,
            error=(result.error or None) and result.error[:MAX_ERROR_CHARS],
        )
    )
    delivery.attempts += 1
    if result.delivered:
        delivery.status = DeliveryStatus.DELIVERED
        delivery.delivered_at = now
        delivery.last_error = None
    elif not result.retryable or delivery.attempts >= settings.max_attempts:
        delivery.status = DeliveryStatus.FAILED
        delivery.last_error = result.error
    else:
        delay = backoff_delay(
            delivery.attempts, base=settings.backoff_base, cap=settings.backoff_max
        )
        wait = max(delay, result.retry_after or 0.0)
        delivery.next_attempt_at = now + dt.timedelta(seconds=min(wait, settings.backoff_max))
        delivery.last_error = result.error
    return str(delivery.status)


def deliver_due(
    sessions: sessionmaker[Session],
    *,
    settings: SendSettings,
    limit: int = 100,
    poster: Poster = post,
) -> dict[str, int]:
    """Claim what is due and make one attempt at each; counts by outcome."""
    with sessions.begin() as session:
        ids = claim_due(session, now=utcnow(), limit=limit, lease_seconds=settings.lease_seconds)
    counts: dict[str, int] = {}
    for delivery_id in ids:
        try:
            outcome = send_delivery(
                sessions, delivery_id=delivery_id, settings=settings, poster=poster
            )
        except Exception as exc:  # the record is unreachable: the lease runs out, it is tried again
            trace = failure_trace(exc)
            log.error("notification delivery %s could not be recorded\n%s", delivery_id, trace)
            outcome = "error"
        counts[outcome] = counts.get(outcome, 0) + 1
    return counts
