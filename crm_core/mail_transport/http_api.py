"""Delivery through an HTTP e-mail API: one POST per message, retried; and the neutral JSON API.

``HttpSendBackend`` is what every HTTP backend shares: one pinned session per
batch, 429 and 5xx retried after ``Retry-After`` or a backoff, a 4xx final. The
provider backends (``provider_apis``) build on it. ``HttpApiBackend`` speaks a
provider-neutral JSON (from, to, subject, text, html and the headers that
matter) that no provider accepts as such: an adapter of your own receives it.
Its caller's key (the send row's id) goes in ``Idempotency-Key`` so a retried
POST that had in fact succeeded is not delivered twice by an adapter that
honours the header.

The API's host is resolved once per batch and every POST goes to that
address (``crm_core.pinned_http``); at most 64 KiB of an answer is read.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
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
    """The endpoint, its key, and how hard to try."""

    url: str
    token: str | None = None
    connect_timeout: float = 5.0
    read_timeout: float = 30.0
    retries: int = 3
    backoff: float = 0.5
    # A CA bundle to check the API's certificate against, instead of the system's.
    cafile: str | None = None


@dataclass(frozen=True)
class ApiRequest:
    """One POST: the path after the settings' URL, and a JSON body or multipart fields."""

    path: str = ""
    json: Any = None
    # Multipart form fields, in order (a name may repeat).
    fields: list[tuple[str, str]] | None = None
    headers: dict[str, str] = field(default_factory=dict)


class HttpSendBackend(BatchBackend):
    """POSTs each message over one keep-alive ``requests.Session`` per batch, retrying 429 and 5xx.

    Subclasses say how a message becomes a request (``request``), where the
    provider's id for it is in the answer (``provider_id``), and whether the API
    honours ``Idempotency-Key`` (``idempotent``): only then is a request that may
    have gone through (a timeout after sending) tried again; otherwise the
    failure is ``maybe_sent`` at once, and the message is never sent twice.
    """

    idempotent = False

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
            if self.settings.cafile:
                self._session.verify = self.settings.cafile
            self.authorize(self._session)

    def authorize(self, session: requests.Session) -> None:
        """Put the API's credentials on every request of the session."""

    def close(self) -> None:
        """Release the session's connections."""
        if self._session is not None:
            self._session.close()
        self._session = None

    def send(self, message: EmailMessage, *, idempotency_key: str | None = None) -> str:
        """POST one message, retrying 429, 5xx and network errors with backoff."""
        self.open()
        request = self.request(message, idempotency_key)
        attempt, maybe_sent = 0, False
        while True:
            attempt += 1
            try:
                return self._post_once(request, message)
            except DeliveryError as exc:
                # Once any attempt may have gone through, so may the message.
                maybe_sent = exc.maybe_sent = maybe_sent or exc.maybe_sent
                if isinstance(exc, PermanentDeliveryError) or attempt > self.settings.retries:
                    raise
                if maybe_sent and not self.idempotent:  # a second POST could deliver it twice
                    raise
                delay = self._delay(attempt, exc.retry_after)
                if not self.can_wait(delay):  # a retry past the batch's deadline is not made
                    raise
                self._sleep(delay)

    def request(self, message: EmailMessage, idempotency_key: str | None) -> ApiRequest:
        """The POST that hands ``message`` to the API."""
        raise NotImplementedError

    def provider_id(self, response: requests.Response, answer: bytes, message: EmailMessage) -> str:
        """The API's id for the message it accepted."""
        raise NotImplementedError

    def retry_after(self, response: requests.Response) -> float | None:
        """Seconds the API asked us to wait, from a 429 or 5xx answer."""
        return retry_after_seconds(response.headers.get("Retry-After"))

    def refusal(self, response: requests.Response, answer: bytes) -> DeliveryError | None:
        """A 2xx answer that is a refusal all the same (Postmark's ``ErrorCode``); None if not."""
        return None

    def _post_once(self, request: ApiRequest, message: EmailMessage) -> str:
        assert self._session is not None
        files = [(name, (None, value)) for name, value in request.fields or []] or None
        try:
            response = self._session.post(
                self.settings.url + request.path,
                json=request.json,
                files=files,
                headers=request.headers,
                timeout=(self.settings.connect_timeout, self.settings.read_timeout),
                # A redirect would resend personal data to wherever it points.
                allow_redirects=False,
                stream=True,
            )
            answer = read_capped(response)
        except requests.RequestException as exc:
            raise _network_error(exc) from None
        if 200 <= response.status_code < 300:
            refused = self.refusal(response, answer)
            if refused is not None:
                raise refused
            return self.provider_id(response, answer, message)[:255]
        raise self._status_error(response, answer)

    def _status_error(self, response: requests.Response, answer: bytes) -> DeliveryError:
        status = response.status_code
        excerpt = answer[:200].decode("utf-8", "replace")
        detail = f"e-mail API answered {status}: {excerpt}"
        if status == 429 or status >= 500:
            return TransientDeliveryError(detail, retry_after=self.retry_after(response))
        return PermanentDeliveryError(detail)

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(retry_after, MAX_RETRY_AFTER)
        return float(self.settings.backoff * 2 ** (attempt - 1))


class HttpApiBackend(HttpSendBackend):
    """The provider-neutral JSON API: no provider speaks it; an adapter of your own receives it.

    The URL's password is sent as a bearer token, the caller's key as
    ``Idempotency-Key``; the id is the answer's ``id`` (or ``message_id``,
    ``messageId``), else the message's Message-ID.
    """

    idempotent = True

    def authorize(self, session: requests.Session) -> None:
        """The bearer token, when the URL has one."""
        if self.settings.token:
            session.headers["Authorization"] = f"Bearer {self.settings.token}"

    def request(self, message: EmailMessage, idempotency_key: str | None) -> ApiRequest:
        """The neutral JSON body, with the key in ``Idempotency-Key``."""
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        return ApiRequest(json=api_payload(message), headers=headers)

    def provider_id(self, response: requests.Response, answer: bytes, message: EmailMessage) -> str:
        """The answer's id, else the Message-ID."""
        return _provider_id(answer, message)


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
