"""Sending through Mailgun, SendGrid and Postmark, each over its own documented send API.

- Mailgun: ``POST /v3/<domain>/messages``, multipart form fields (``from``, ``to``,
  ``subject``, ``text``, ``html``, ``h:<Header>``, ``o:<option>``), Basic auth
  ``api:<key>``; the answer's ``id`` is the provider's id.
- SendGrid: ``POST /v3/mail/send``, JSON (``personalizations``, ``from``,
  ``subject``, ``content``, ``headers``), ``Authorization: Bearer <key>``; it
  answers 202 with no body, and the id in the ``X-Message-Id`` header.
- Postmark: ``POST /email``, JSON (``From``, ``To``, ``Subject``, ``TextBody``,
  ``HtmlBody``, ``Headers``, ``MessageStream``), ``X-Postmark-Server-Token``; the
  answer's ``MessageID`` is the id, and a non-zero ``ErrorCode`` is a refusal.

None of the three honours an idempotency key, so each message carries our own
Message-ID (the header every delivery report and reply quotes), and a request
that may have gone through is never repeated: it is ``unknown``, not re-sent.
429 and 5xx answers are retried after the ``Retry-After`` the API gave (SendGrid:
``X-RateLimit-Reset``), or a backoff.
"""

from __future__ import annotations

import json
import time
from email.headerregistry import Address
from email.message import EmailMessage
from typing import Any

import requests

from crm_core.mail_transport.base import DeliveryError, PermanentDeliveryError
from crm_core.mail_transport.http_api import ApiRequest, HttpApiSettings, HttpSendBackend

# Headers of our messages that each API is given as custom headers; the API writes
# From, To, Subject, Date and the MIME structure itself.
CUSTOM_HEADERS = (
    "Message-ID",
    "In-Reply-To",
    "References",
    "List-Unsubscribe",
    "List-Unsubscribe-Post",
    "Auto-Submitted",
)


def _bodies(message: EmailMessage) -> tuple[str, str | None]:
    text_part = message.get_body(preferencelist=("plain",))
    html_part = message.get_body(preferencelist=("html",))
    text = text_part.get_content() if text_part is not None else ""
    return text, html_part.get_content() if html_part is not None else None


def _headers(message: EmailMessage) -> list[tuple[str, str]]:
    return [(name, str(message[name])) for name in CUSTOM_HEADERS if message[name] is not None]


def _addresses(message: EmailMessage, name: str) -> list[Address]:
    return [address for header in message.get_all(name, []) for address in header.addresses]


def _json(answer: bytes) -> dict[str, Any]:
    try:
        parsed = json.loads(answer)
    except ValueError:  # not JSON, or cut at the cap
        return {}
    return parsed if isinstance(parsed, dict) else {}


class MailgunBackend(HttpSendBackend):
    """Mailgun's ``/v3/<domain>/messages``; the settings' URL ends in ``/v3/<domain>``."""

    def __init__(
        self, settings: HttpApiSettings, *, options: dict[str, str] | None = None, **kwargs: Any
    ) -> None:
        super().__init__(settings, **kwargs)
        # ``o:`` options sent with every message (``o:testmode``, ``o:tag``…).
        self.options = options or {}

    def authorize(self, session: requests.Session) -> None:
        """HTTP Basic with the user ``api`` and the key as password."""
        session.auth = ("api", self.settings.token or "")

    def request(self, message: EmailMessage, idempotency_key: str | None) -> ApiRequest:
        """The message as Mailgun's form fields; our headers as ``h:`` fields."""
        text, html = _bodies(message)
        fields = [("from", str(message["From"]))]
        fields += [("to", str(address)) for address in _addresses(message, "To")]
        fields += [("cc", str(address)) for address in _addresses(message, "Cc")]
        fields += [("subject", str(message["Subject"] or "")), ("text", text)]
        if html is not None:
            fields.append(("html", html))
        if message["Reply-To"] is not None:
            fields.append(("h:Reply-To", str(message["Reply-To"])))
        fields += [(f"h:{name}", value) for name, value in _headers(message)]
        fields += [(f"o:{name}", value) for name, value in self.options.items()]
        return ApiRequest(path="/messages", fields=fields)

    def provider_id(self, response: requests.Response, answer: bytes, message: EmailMessage) -> str:
        """The answer's ``id`` (``<…@domain>``); it is the Message-ID we gave."""
        found = _json(answer).get("id")
        return str(found) if isinstance(found, str) and found else str(message["Message-ID"] or "")


class SendGridBackend(HttpSendBackend):
    """SendGrid's v3 Mail Send; the settings' URL is the API's origin (``https://api.sendgrid.com``)."""

    def __init__(self, settings: HttpApiSettings, *, sandbox: bool = False, **kwargs: Any) -> None:
        super().__init__(settings, **kwargs)
        # ``mail_settings.sandbox_mode``: SendGrid checks the request and delivers nothing.
        self.sandbox = sandbox

    def authorize(self, session: requests.Session) -> None:
        """The API key as a bearer token."""
        session.headers["Authorization"] = f"Bearer {self.settings.token or ''}"

    def request(self, message: EmailMessage, idempotency_key: str | None) -> ApiRequest:
        """The message as a Mail Send document: one personalization, text before HTML."""
        text, html = _bodies(message)
        to = [_party(address) for address in _addresses(message, "To")]
        personalization: dict[str, Any] = {"to": to}
        cc = [_party(address) for address in _addresses(message, "Cc")]
        if cc:
            personalization["cc"] = cc
        content = [{"type": "text/plain", "value": text or " "}]
        if html is not None:
            content.append({"type": "text/html", "value": html})
        body: dict[str, Any] = {
            "personalizations": [personalization],
            "from": _party(_addresses(message, "From")[0]),
            "subject": str(message["Subject"] or ""),
            "content": content,
            "headers": dict(_headers(message)),
        }
        reply_to = _addresses(message, "Reply-To")
        if reply_to:
            body["reply_to"] = _party(reply_to[0])
        if self.sandbox:
            body["mail_settings"] = {"sandbox_mode": {"enable": True}}
        return ApiRequest(path="/v3/mail/send", json=body)

    def provider_id(self, response: requests.Response, answer: bytes, message: EmailMessage) -> str:
        """The ``X-Message-Id`` header of the 202 answer."""
        return response.headers.get("X-Message-Id") or str(message["Message-ID"] or "")

    def retry_after(self, response: requests.Response) -> float | None:
        """``Retry-After``, else the wait until ``X-RateLimit-Reset`` (a Unix time)."""
        waited = super().retry_after(response)
        if waited is not None:
            return waited
        try:
            reset = float(response.headers.get("X-RateLimit-Reset", ""))
        except ValueError:
            return None
        return max(0.0, reset - time.time())


def _party(address: Address) -> dict[str, str]:
    party = {"email": address.addr_spec}
    if address.display_name:
        party["name"] = address.display_name
    return party


class PostmarkBackend(HttpSendBackend):
    """Postmark's ``/email``; the settings' URL is the API's origin (``https://api.postmarkapp.com``)."""

    def __init__(
        self, settings: HttpApiSettings, *, stream: str | None = None, **kwargs: Any
    ) -> None:
        super().__init__(settings, **kwargs)
        # The message stream (``outbound`` by Postmark's default; campaigns: a broadcast one).
        self.stream = stream

    def authorize(self, session: requests.Session) -> None:
        """The server token in ``X-Postmark-Server-Token``."""
        session.headers["X-Postmark-Server-Token"] = self.settings.token or ""
        session.headers["Accept"] = "application/json"

    def request(self, message: EmailMessage, idempotency_key: str | None) -> ApiRequest:
        """The message as Postmark's JSON; our headers as ``Headers`` name/value pairs."""
        text, html = _bodies(message)
        body: dict[str, Any] = {
            "From": str(message["From"]),
            "To": ", ".join(str(address) for address in _addresses(message, "To")),
            "Subject": str(message["Subject"] or ""),
            "TextBody": text,
            "Headers": [{"Name": name, "Value": value} for name, value in _headers(message)],
        }
        cc = _addresses(message, "Cc")
        if cc:
            body["Cc"] = ", ".join(str(address) for address in cc)
        if html is not None:
            body["HtmlBody"] = html
        if message["Reply-To"] is not None:
            body["ReplyTo"] = str(message["Reply-To"])
        if self.stream:
            body["MessageStream"] = self.stream
        return ApiRequest(path="/email", json=body)

    def provider_id(self, response: requests.Response, answer: bytes, message: EmailMessage) -> str:
        """The answer's ``MessageID``."""
        found = _json(answer).get("MessageID")
        return str(found) if isinstance(found, str) and found else str(message["Message-ID"] or "")

    def refusal(self, response: requests.Response, answer: bytes) -> DeliveryError | None:
        """A 200 whose ``ErrorCode`` is not 0 was not accepted."""
        code = _json(answer).get("ErrorCode", 0)
        if code in (0, None):
            return None
        excerpt = answer[:200].decode("utf-8", "replace")
        return PermanentDeliveryError(f"e-mail API answered {response.status_code}: {excerpt}")
