"""What every mail backend is: open once, send many, close; and how a failure is classified."""

from __future__ import annotations

import time
from collections.abc import Callable
from email.message import EmailMessage
from types import TracebackType
from typing import Protocol, Self

from crm_core.errors import PermanentError


class DeliveryError(Exception):
    """A message was not handed over.

    ``maybe_sent`` is True when the failure came after the message was on its
    way (the connection broke while the server was answering DATA, an HTTP
    response timed out): the server may have taken it, so a caller that must
    send at most once records the outcome as unknown instead of retrying.
    """

    def __init__(
        self, message: str, *, maybe_sent: bool = False, retry_after: float | None = None
    ) -> None:
        super().__init__(message)
        self.maybe_sent = maybe_sent
        # Seconds the server asked us to wait (HTTP Retry-After), when it said.
        self.retry_after = retry_after


class TransientDeliveryError(DeliveryError):
    """Worth trying again later: connection refused, timeout, SMTP 4xx, HTTP 429 or 5xx."""


class PermanentDeliveryError(DeliveryError, PermanentError):
    """Trying again will not help: SMTP 5xx, HTTP 4xx other than 429, bad credentials."""


class MailBackend(Protocol):
    """Hands messages to a mail system; used as a context manager around one batch."""

    def open(self) -> None:
        """Connect (when the backend has a connection); idempotent."""

    def send(self, message: EmailMessage, *, idempotency_key: str | None = None) -> str:
        """Hand over one message and return the provider's id for it; DeliveryError if not."""
        ...

    def close(self) -> None:
        """Disconnect; safe to call when not open."""

    def limit_to(self, deadline: float | None) -> None:
        """Retry or wait no later than ``deadline`` (``time.monotonic()``); None: no limit."""

    def __enter__(self) -> Self: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None: ...


class BatchBackend:
    """Base of the backends: ``with backend:`` opens once and closes at the end of the batch."""

    # A batch's deadline (``time.monotonic()``): a backend that retries stops retrying by then.
    deadline: float | None = None
    clock: Callable[[], float] = staticmethod(time.monotonic)

    def limit_to(self, deadline: float | None) -> None:
        """Retry or wait no later than ``deadline``; None: no limit."""
        self.deadline = deadline

    def can_wait(self, seconds: float) -> bool:
        """Whether a wait of ``seconds`` from now still ends by the deadline."""
        return self.deadline is None or self.clock() + seconds <= self.deadline

    def open(self) -> None:
        """Nothing to connect by default."""

    def close(self) -> None:
        """Nothing to disconnect by default."""

    def __enter__(self) -> Self:
        self.open()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
