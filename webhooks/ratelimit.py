"""Per-source rate limits on shared storage (Redis when configured), via ``limits``."""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass

from flask import Flask, current_app
from limits import RateLimitItemPerMinute
from limits.storage import storage_from_string
from limits.strategies import FixedWindowRateLimiter

from crm_core.config import Settings

log = logging.getLogger(__name__)
_EXTENSION = "crm_ratelimit"
# Rate limiting must never hold a webhook up: short timeouts, and fail open.
_REDIS_OPTIONS = {"socket_timeout": 0.5, "socket_connect_timeout": 0.5}


@dataclass(frozen=True)
class RateLimiter:
    """A fixed-window limiter keyed by source, with a default per-minute budget."""

    limiter: FixedWindowRateLimiter
    default_per_minute: int
    prefix: str

    def retry_after(self, source_id: int, per_minute: int | None) -> int | None:
        """Count one request; ``None`` if allowed, else the seconds until the next window."""
        budget = self.default_per_minute if per_minute is None else per_minute
        if budget <= 0:
            return None
        item = RateLimitItemPerMinute(budget)
        key = f"{self.prefix}:source:{source_id}"
        try:
            if self.limiter.hit(item, key):
                return None
            reset = self.limiter.get_window_stats(item, key).reset_time
        except Exception as exc:  # storage down: accept rather than lose a webhook
            log.warning("rate limit storage unavailable: %s: %s", type(exc).__name__, exc)
            return None
        return max(1, math.ceil(reset - time.time()))


def init_app(app: Flask, settings: Settings) -> None:
    """Attach a rate limiter on the configured storage to ``app``."""
    url = settings.resolved_ratelimit_url()
    options = _REDIS_OPTIONS if url.startswith(("redis://", "rediss://")) else {}
    storage = storage_from_string(url, **options)
    app.extensions[_EXTENSION] = RateLimiter(
        limiter=FixedWindowRateLimiter(storage),
        default_per_minute=settings.rate_limit_per_minute,
        prefix=settings.ratelimit_prefix,
    )


def rate_limiter() -> RateLimiter:
    """The current app's limiter."""
    limiter: RateLimiter = current_app.extensions[_EXTENSION]
    return limiter
