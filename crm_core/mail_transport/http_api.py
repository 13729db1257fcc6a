"""Delivery through an HTTP e-mail API: one JSON POST per message, retried, with a key.

The request body is provider-neutral (from, to, subject, text, html and the
headers that matter); a small adapter in front of a particular provider, or
the provider itself if it speaks this shape, receives it. The caller's key
(the send row's id) goes in ``Idempotency-Key`` so a retried POST that had in
fact succeeded is not delivered twice by a provider that honours the header.

The API's host is resolved once per batch and every POST goes to that
address (``crm_core.pinned_http``); at most 64 KiB of an answer is read.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any

import requests

from crm_core.mail_transport.base import (
    BatchBackend,
    DeliveryError,
    PermanentDeliveryError,
    TransientDeliveryError,
)
from crm_core.mail_transport.messages import envelope_recipients, envelope_sender
from crm_core.pinned_http import Resolver, pinned_session, read_capped, resolve, retry_after_seconds

FORWARDED_HEADERS = (
    "Message-ID",
    "In-Reply-To",
    "References",
    "Reply-To",
    "List-Unsubscribe",
    "List-Unsubscribe-Post",
    "Auto-Submitted",
)
MAX_RETRY_AFTER = 60.0


@dataclass(frozen=True)
class HttpApiSettings:
    """The endpoint, its bearer token, and how hard to try."""

    url: str
    token: str | None = None
    connect_timeout: float = 5.0
    read_timeout: float = 30.0
    retries: int = 3
    backoff: float = 0.5


class HttpApiBackend(BatchBackend):
    """POSTs each message as JSON over one keep-alive ``requests.Session`` per batch."""

    def __init__(
        self,
        settings: HttpApiSettings,
        *,
        sleep: Callable[[float], None] = time.sleep,
        resolver: Resolver = resolve,
    ) -> None:
        self.settings = settings
        self._sleep = sleep
        self._resolver = resolver
        self._session: requests.Session | None = None

    def open(self) -> None:
        """Start a session pinned to the API's address (one lookup and one pool per batch)."""
        if self._session is None:
            try:
                self._session = pinned_session(self.settings.url, resolver=self._resolver)
            except ConnectionError as exc:
                raise TransientDeliveryError(f"e-mail API unreachable: {exc}") from None
            if self.settings.token:
                self._session.headers["Authorization"] = f"Bearer {self.settings.token}"

    def close(self) -> None:
        """Release the session's connections."""
        if self._session is not None:
            self._session.close()
        self._session = None

    def send(self, message: EmailMessage, *, idempotency_key: str | None = None) -> str:
        """POST one message, retrying 429, 5xx and network errors with backoff."""
        self.open()
        body = api_payload(message)
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        attempt, maybe_sent = 0, False
        while True:
            attempt += 1
            try:
                return self._post_once(body, headers, message)
            except DeliveryError as exc:
                # Once any attempt may have gone through, so may the message.
                maybe_sent = exc.maybe_sent = maybe_sent or exc.maybe_sent
                if isinstance(exc, PermanentDeliveryError) or attempt > self.settings.retries:
                    raise
                delay = self._delay(attempt, exc.retry_after)
                if not self.can_wait(delay):  # a retry past the batch's deadline is not made
                    raise
                self._sleep(delay)

    def _post_once(
        self, body: dict[str, Any], headers: dict[str, str], message: EmailMessage
    ) -> str:
        assert self._session is not None
        try:
            response = self._session.post(
                self.settings.url,
                json=body,
                headers=headers,
                timeout=(self.settings.connect_timeout, self.settings.read_timeout),
                # A redirect would resend personal data to wherever it points.
                allow_redirects=False,
                stream=True,
            )
            answer = read_capped(response)
        except requests.RequestException as exc:
            raise _network_error(exc) from None
        if 200 <= response.status_code < 300:
            return _provider_id(answer, message)
        raise _status_error(response, answer)

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(retry_after, MAX_RETRY_AFTER)
        return float(self.settings.backoff * 2 ** (attempt - 1))


def api_payload(message: EmailMessage) -> dict[str, Any]:
    """The provider-neutral JSON body of a message."""
    text_part = message.get_body(preferencelist=("plain",))
    html_part = message.get_body(preferencelist=("html",))
    headers = {name: str(message[name]) for name in FORWARDED_HEADERS if message[name] is not None}
    return {
        "from": str(message["From"]),
        "envelope_from": envelope_sender(message),
        "to": envelope_recipients(message),
        "subject": str(message["Subject"] or ""),
        "text": text_part.get_content() if text_part is not None else "",
        "html": html_part.get_content() if html_part is not None else None,
        "headers": headers,
    }


def _provider_id(answer: bytes, message: EmailMessage) -> str:
    try:
        parsed = json.loads(answer)
    except ValueError:  # not JSON, or cut at the cap
        parsed = None
    if isinstance(parsed, dict):
        for key in ("id", "message_id", "messageId"):
            if isinstance(parsed.get(key), str | int):
                return str(parsed[key])[:255]
    return str(message["Message-ID"] or "")


def _network_error(exc: requests.RequestException) -> DeliveryError:
    # A connection that never opened cannot have delivered; one that broke or
    # timed out after the request went may have.
    never_sent = isinstance(exc, requests.ConnectTimeout) or (
        isinstance(exc, requests.ConnectionError) and "NewConnectionError" in repr(exc)
    )
    return TransientDeliveryError(f"e-mail API unreachable: {exc}", maybe_sent=not never_sent)


def _status_error(response: requests.Response, answer: bytes) -> DeliveryError:
    status = response.status_code
    excerpt = answer[:200].decode("utf-8", "replace")
    detail = f"e-mail API answered {status}: {excerpt}"
    if status == 429 or status >= 500:
        retry_after = retry_after_seconds(response.headers.get("Retry-After"))
        return TransientDeliveryError(detail, retry_after=retry_after)
    return PermanentDeliveryError(detail)
