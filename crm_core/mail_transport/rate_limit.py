"""A token bucket: at most ``rate`` messages per second, in a steady stream."""

from __future__ import annotations

import time
from collections.abc import Callable
from email.message import EmailMessage

from crm_core.mail_transport.base import BatchBackend, MailBackend


class TokenBucket:
    """Refills ``rate`` tokens a second up to ``capacity``; ``acquire`` takes one, or waits."""

    def __init__(
        self,
        rate: float,
        *,
        capacity: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if rate <= 0 or capacity < 1:
            raise ValueError("a token bucket needs rate > 0 and capacity >= 1")
        self.rate = rate
        self.capacity = capacity
        self._clock = clock
        self._sleep = sleep
        self._tokens = capacity
        self._updated = clock()

    def acquire(self) -> float:
        """Take one token; returns the seconds spent waiting for it."""
        now = self._clock()
        self._tokens = min(self.capacity, self._tokens + (now - self._updated) * self.rate)
        self._updated = now
        waited = 0.0
        if self._tokens < 1:
            waited = (1 - self._tokens) / self.rate
            self._sleep(waited)
            # The wait bought exactly one token, as of the moment it ends.
            self._tokens = 1.0
            self._updated = now + waited
        self._tokens -= 1
        return waited


class RateLimitedBackend(BatchBackend):
    """Another backend, sending no faster than its bucket allows."""

    def __init__(self, inner: MailBackend, bucket: TokenBucket) -> None:
        self.inner = inner
        self.bucket = bucket

    def open(self) -> None:
        self.inner.open()

    def limit_to(self, deadline: float | None) -> None:
        """The inner backend's retries stop by ``deadline`` too."""
        self.deadline = deadline
        self.inner.limit_to(deadline)

    def send(self, message: EmailMessage, *, idempotency_key: str | None = None) -> str:
        """Wait for a token, then send through the inner backend."""
        self.bucket.acquire()
        return self.inner.send(message, idempotency_key=idempotency_key)

    def close(self) -> None:
        self.inner.close()
