"""Per-source rate limits on shared storage (Redis when configured), via ``limits``.

A fixed window per source (or per any other name: a web form's client address) and minute,
shared by every web process; it never admits more than
the budget, and fails open when the storage is unreachable. How each process reserves budget in
blocks, and what that costs in accuracy: ``docs/performance.md`` (Webhook intake).
"""

from __future__ import annotations

import logging
import math
import threading
import time
from dataclasses import dataclass, field

from flask import Flask, current_app
from limits import RateLimitItem, RateLimitItemPerSecond
from limits.storage import Storage, storage_from_string

from crm_core.config import Settings

log = logging.getLogger(__name__)
_EXTENSION = "crm_ratelimit"
# Rate limiting must never hold a webhook up: short timeouts, and fail open.
_REDIS_OPTIONS = {"socket_timeout": 0.5, "socket_connect_timeout": 0.5}
MAX_BLOCK = 64
BLOCK_SHARE = 100  # a block is at most 1/BLOCK_SHARE of the budget
MAX_RESERVATIONS = 10_000  # names one process remembers before it forgets spent windows


def block_size(budget: int, max_block: int = MAX_BLOCK) -> int:
    """How many requests one reservation takes: 1 % of the budget, between 1 and ``max_block``."""
    return max(1, min(max_block, budget // BLOCK_SHARE))


@dataclass
class _Reservation:
    """What one process holds of one source's current window."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    tokens: int = 0
    budget: int = 0
    valid_until: float = 0.0  # monotonic: the end of the window the tokens belong to
    refused_until: float = 0.0  # monotonic: the window is spent until then


class RateLimiter:
    """A fixed-window limiter keyed by source, with a default per-minute budget."""

    def __init__(
        self,
        storage: Storage,
        *,
        default_per_minute: int,
        prefix: str,
        window_seconds: int = 60,
        max_block: int = MAX_BLOCK,
    ) -> None:
        self.storage = storage
        self.default_per_minute = default_per_minute
        self.prefix = prefix
        self.window_seconds = window_seconds
        self.max_block = max_block
        self._reservations: dict[str, _Reservation] = {}
        self._lock = threading.Lock()

    def retry_after(self, source_id: int, per_minute: int | None) -> int | None:
        """Count one request; ``None`` if allowed, else the seconds until the next window."""
        budget = self.default_per_minute if per_minute is None else per_minute
        return self.retry_after_for(f"source:{source_id}", budget)

    def retry_after_for(self, name: str, budget: int) -> int | None:
        """Count one request against ``name``'s own budget (a client address, say); as
        ``retry_after``."""
        if budget <= 0:
            return None
        key = f"{self.prefix}:{name}"
        reservation = self._reservation(key)
        with reservation.lock:
            now = time.monotonic()
            if reservation.budget != budget:  # the source's budget changed: start afresh
                reservation.tokens, reservation.refused_until = 0, 0.0
                reservation.budget = budget
            if reservation.tokens > 0 and now < reservation.valid_until:
                reservation.tokens -= 1
                return None
            if now < reservation.refused_until:
                return max(1, math.ceil(reservation.refused_until - now))
            return self._reserve(reservation, key, budget, now)

    def _reserve(self, reservation: _Reservation, key: str, budget: int, now: float) -> int | None:
        """Take a block of the window's budget from the storage and spend one request of it."""
        item = RateLimitItemPerSecond(budget, self.window_seconds)
        block = block_size(budget, self.max_block)
        try:
            total = self.storage.incr(item.key_for(key), item.get_expiry(), amount=block)
            granted = max(0, min(block, budget - (total - block)))
            # A grant of one is spent at once: only leftovers and refusals need the window's end.
            ends_in = 0.0 if granted == 1 else self._ends_in(item, key)
        except Exception as exc:  # storage down: accept rather than lose a webhook
            log.warning("rate limit storage unavailable: %s: %s", type(exc).__name__, exc)
            return None
        if granted:
            reservation.tokens = granted - 1
            reservation.valid_until = now + ends_in
            return None
        wait = max(1, math.ceil(ends_in))
        reservation.refused_until = now + wait
        return wait

    def _ends_in(self, item: RateLimitItem, key: str) -> float:
        """Seconds until the current window of ``key`` ends."""
        return float(self.storage.get_expiry(item.key_for(key))) - time.time()

    def _reservation(self, key: str) -> _Reservation:
        reservation = self._reservations.get(key)
        if reservation is None:
            with self._lock:
                if len(self._reservations) >= MAX_RESERVATIONS:
                    self._forget_spent()
                reservation = self._reservations.setdefault(key, _Reservation())
        return reservation

    def _forget_spent(self) -> None:
        """Drop the reservations whose window is over: keyed by client address, the table
        would otherwise grow with every address that ever posted a form."""
        now = time.monotonic()
        for key, held in list(self._reservations.items()):
            if held.valid_until <= now and held.refused_until <= now:
                del self._reservations[key]


def init_app(app: Flask, settings: Settings) -> RateLimiter:
    """Attach a rate limiter on the configured storage to ``app``; the limiter."""
    url = settings.resolved_ratelimit_url()
    options = _REDIS_OPTIONS if url.startswith(("redis://", "rediss://")) else {}
    storage = storage_from_string(url, **options)
    # A synchronous URL (memory://, redis://…) makes a synchronous storage.
    assert isinstance(storage, Storage), f"not a synchronous rate-limit storage: {url}"
    limiter = RateLimiter(
        storage,
        default_per_minute=settings.rate_limit_per_minute,
        prefix=settings.ratelimit_prefix,
    )
    app.extensions[_EXTENSION] = limiter
    return limiter


def rate_limiter() -> RateLimiter:
    """The current app's limiter."""
    limiter: RateLimiter = current_app.extensions[_EXTENSION]
    return limiter
