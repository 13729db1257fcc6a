"""A budget of failed unauthenticated requests per client address, then 429.

Anyone can POST to the intake or present an API key. A request that fails
authentication (an unknown source, a bad signature, a bad key) costs a
lookup, perhaps a body read and an HMAC, and tells the sender something
(which sources exist). So each client address may fail
``CRM_AUTH_FAILURES_PER_WINDOW`` times per window; the failure after that,
and every request from that address until the window ends, is answered 429
with ``Retry-After``, before any other work.

Failures are counted in the rate-limit storage (Redis when configured), so
every web process draws on one budget. Only failures touch the storage: a
process remembers the addresses it found over budget and refuses them from
memory, so a sender that authenticates costs no round trip. IPv6 addresses
count per /64, the block one subscriber usually holds. Behind a proxy, the
address is read from ``X-Forwarded-For`` (``CRM_TRUSTED_PROXY_HOPS``), or
every client would share the proxy's budget. When the storage is
unreachable the budget fails open, like the rate limiter.
"""

from __future__ import annotations

import ipaddress
import logging
import math
import threading
import time

from flask import Flask, Response, current_app, request
from limits import RateLimitItemPerSecond
from limits.storage import Storage
from limits.strategies import FixedWindowRateLimiter

from crm_core.config import Settings
from webhooks.problems import problem

log = logging.getLogger(__name__)
_EXTENSION = "crm_failure_budget"
MAX_REMEMBERED = 10_000  # addresses over budget one process keeps in memory


def client_key(address: str | None) -> str:
    """What one client is counted as: its IPv4 address, or its IPv6 address's /64."""
    try:
        ip = ipaddress.ip_address(address or "")
    except ValueError:
        return address or "unknown"
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network(f"{ip}/64", strict=False))
    return str(ip)


class FailureBudget:
    """Failed unauthenticated requests per client, in a fixed window on shared storage."""

    def __init__(
        self, storage: Storage, *, per_window: int, window_seconds: int, prefix: str
    ) -> None:
        self._limiter = FixedWindowRateLimiter(storage)
        self._item = RateLimitItemPerSecond(per_window, window_seconds) if per_window > 0 else None
        self._prefix = prefix
        self._over: dict[str, float] = {}  # client -> monotonic end of its spent window
        self._lock = threading.Lock()

    def retry_after(self, address: str | None) -> int | None:
        """Seconds until ``address`` may try again, if this process saw it spend its budget."""
        key = client_key(address)
        until = self._over.get(key)
        if until is None:
            return None
        wait = until - time.monotonic()
        if wait <= 0:
            with self._lock:
                self._over.pop(key, None)
            return None
        return max(1, math.ceil(wait))

    def spend(self, address: str | None) -> int | None:
        """Count one failure of ``address``; the seconds to wait if that was one too many."""
        if self._item is None:
            return None
        key = client_key(address)
        try:
            if self._limiter.hit(self._item, self._prefix, "auth-failures", key):
                return None
            stats = self._limiter.get_window_stats(self._item, self._prefix, "auth-failures", key)
        except Exception as exc:  # storage down: never refuse because the budget cannot count
            log.warning("failure budget storage unavailable: %s", type(exc).__name__)
            return None
        wait = max(1, math.ceil(stats.reset_time - time.time()))
        with self._lock:
            if len(self._over) >= MAX_REMEMBERED:
                self._forget_expired()
            self._over[key] = time.monotonic() + wait
        return wait

    def _forget_expired(self) -> None:
        now = time.monotonic()
        for key in [key for key, until in self._over.items() if until <= now]:
            del self._over[key]
        while len(self._over) >= MAX_REMEMBERED:  # still full: the oldest go first
            del self._over[next(iter(self._over))]


def init_app(app: Flask, settings: Settings, storage: Storage) -> None:
    """Attach a failure budget on ``storage`` (the rate limiter's) to ``app``."""
    app.extensions[_EXTENSION] = FailureBudget(
        storage,
        per_window=settings.auth_failures_per_window,
        window_seconds=settings.auth_failure_window_seconds,
        prefix=settings.ratelimit_prefix,
    )


def failure_budget() -> FailureBudget:
    """The current app's failure budget."""
    budget: FailureBudget = current_app.extensions[_EXTENSION]
    return budget


def refused_for_failures() -> Response | None:
    """A 429 for a client that spent its budget of failures (checked first, from memory)."""
    wait = failure_budget().retry_after(request.remote_addr)
    return None if wait is None else _too_many(wait)


def count_failure(refusal: Response) -> Response:
    """Count an unauthenticated failure: ``refusal`` itself, or a 429 if it was one too many."""
    wait = failure_budget().spend(request.remote_addr)
    return refusal if wait is None else _too_many(wait)


def _too_many(wait: int) -> Response:
    return problem(
        429,
        f"Too many failed attempts from this address; retry in {wait} s.",
        type_="too-many-failures",
        headers={"Retry-After": str(wait)},
    )
