"""Mail backends chosen by ``CRM_MAIL_URL``, and the two development ones (console, files).

``smtp://user:pass@host:port[?starttls=1]``, ``smtps://…``,
``mailgun+https://api:KEY@api.mailgun.net/v3/DOMAIN``,
``sendgrid+https://apikey:KEY@api.sendgrid.com``,
``postmark+https://:TOKEN@api.postmarkapp.com``, ``http(s)://…`` (the
provider-neutral JSON API; the URL's password, if any, is its bearer token),
``console://`` and ``file://DIR``. Query options: ``timeout`` (seconds),
``cafile`` (SMTP and HTTP), ``insecure`` (SMTP), ``retries`` and ``backoff``
(HTTP), ``testmode`` and ``tag`` (Mailgun), ``sandbox`` (SendGrid), ``stream``
(Postmark). An SMTP password goes only over TLS (``smtps://`` or
``?starttls=1``) unless the URL says ``?insecure=1``.
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
import sys
import tempfile
from email import policy
from email.message import EmailMessage
from pathlib import Path
from typing import TextIO
from urllib.parse import SplitResult, parse_qs, unquote, urlsplit, urlunsplit

from crm_core.mail_transport.base import (
    BatchBackend,
    DeliveryError,
    MailBackend,
    PermanentDeliveryError,
    TransientDeliveryError,
)
from crm_core.mail_transport.http_api import HttpApiBackend, HttpApiSettings
from crm_core.mail_transport.provider_apis import MailgunBackend, PostmarkBackend, SendGridBackend
from crm_core.mail_transport.rate_limit import RateLimitedBackend, TokenBucket
from crm_core.mail_transport.smtp import SmtpBackend, SmtpSettings

__all__ = [
    "ConsoleBackend",
    "DeliveryError",
    "FileBackend",
    "HttpApiBackend",
    "InvalidMailUrlError",
    "MailBackend",
    "MailgunBackend",
    "PermanentDeliveryError",
    "PostmarkBackend",
    "SendGridBackend",
    "SmtpBackend",
    "TransientDeliveryError",
    "backend_from_url",
    "check_mail_url",
]

SEPARATOR = "-" * 72


class InvalidMailUrlError(ValueError):
    """``CRM_MAIL_URL`` names no backend we have, or lacks what its backend needs."""


class ConsoleBackend(BatchBackend):
    """Prints each message to a stream (stdout by default): for development."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream

    def send(self, message: EmailMessage, *, idempotency_key: str | None = None) -> str:
        """Print the whole message; its Message-ID is the id."""
        stream = self.stream or sys.stdout
        stream.write(f"{message.as_string()}\n{SEPARATOR}\n")
        stream.flush()
        return str(message["Message-ID"] or "")


class FileBackend(BatchBackend):
    """Writes each message to its own ``.eml`` file in a directory: the embedded default."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def open(self) -> None:
        """Create the directory if needed."""
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise TransientDeliveryError(f"cannot use {self.directory}: {exc}") from None

    def send(self, message: EmailMessage, *, idempotency_key: str | None = None) -> str:
        """Write the message atomically (a reader never sees half a file); the name is the id."""
        self.open()
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%fZ")
        name = f"{stamp}-{secrets.token_hex(6)}.eml"
        descriptor, temporary = tempfile.mkstemp(dir=self.directory, prefix=".", suffix=".tmp")
        try:
            with os.fdopen(descriptor, "wb") as handle:
                handle.write(message.as_bytes(policy=policy.SMTP))
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, self.directory / name)
        except OSError as exc:
            Path(temporary).unlink(missing_ok=True)
            raise TransientDeliveryError(f"cannot write {name}: {exc}") from None
        return name


def check_mail_url(url: str) -> str | None:
    """Why ``url`` names no usable backend, in one line; None when it does (nothing connects)."""
    try:
        _backend(url)
    except InvalidMailUrlError as exc:
        return f"CRM_MAIL_URL is not usable: {exc}"
    return None


def backend_from_url(url: str, *, rate_per_second: float = 0.0) -> MailBackend:
    """The backend ``url`` names, rate-limited when ``rate_per_second`` > 0."""
    backend = _backend(url)
    if rate_per_second > 0:
        return RateLimitedBackend(backend, TokenBucket(rate_per_second))
    return backend


def _backend(url: str) -> MailBackend:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    options = {key: values[-1] for key, values in parse_qs(parts.query).items()}
    if scheme == "console":
        return ConsoleBackend()
    if scheme == "file":
        path = unquote(parts.netloc + parts.path)
        if not path:
            raise InvalidMailUrlError("file:// needs a directory, e.g. file:///var/crm/outbox")
        return FileBackend(Path(path))
    if scheme in ("smtp", "smtps"):
        return SmtpBackend(_smtp_settings(parts, options, implicit_tls=scheme == "smtps"))
    if scheme in ("http", "https"):
        return HttpApiBackend(_http_settings(parts, options))
    if scheme in _PROVIDERS:
        return _provider_backend(scheme, parts, options)
    raise InvalidMailUrlError(
        f"unknown mail URL scheme {scheme or '(none)'!r}: use smtp, smtps, mailgun+https,"
        " sendgrid+https, postmark+https, http(s), console or file"
    )


# Each provider's scheme, and the example its errors quote.
_PROVIDERS = {
    "mailgun+https": "mailgun+https://api:KEY@api.mailgun.net/v3/mg.example.com",
    "sendgrid+https": "sendgrid+https://apikey:KEY@api.sendgrid.com",
    "postmark+https": "postmark+https://:SERVER_TOKEN@api.postmarkapp.com",
}


def _provider_backend(scheme: str, parts: SplitResult, options: dict[str, str]) -> MailBackend:
    example = _PROVIDERS[scheme]
    key = unquote(parts.password or "") or unquote(parts.username or "")
    if not key:
        raise InvalidMailUrlError(f"{scheme} needs the API key in the URL, e.g. {example}")
    path = parts.path.rstrip("/")
    if scheme == "mailgun+https":
        segments = path.split("/")
        if len(segments) != 3 or segments[1] != "v3" or not segments[2]:
            raise InvalidMailUrlError(f"{scheme} needs the sending domain's path, e.g. {example}")
    elif path:
        raise InvalidMailUrlError(f"{scheme} takes the API's address, no path, e.g. {example}")
    settings = _http_settings(parts._replace(scheme="https", path=path), options, token=key)
    if scheme == "mailgun+https":
        mailgun_options = {"testmode": "yes"} if _flag(options.get("testmode", "0")) else {}
        if options.get("tag"):
            mailgun_options["tag"] = options["tag"]
        return MailgunBackend(settings, options=mailgun_options)
    if scheme == "sendgrid+https":
        return SendGridBackend(settings, sandbox=_flag(options.get("sandbox", "0")))
    return PostmarkBackend(settings, stream=options.get("stream") or None)


def _smtp_settings(
    parts: SplitResult, options: dict[str, str], *, implicit_tls: bool
) -> SmtpSettings:
    try:
        port = parts.port
    except ValueError:
        raise InvalidMailUrlError("the mail URL's port is not a number") from None
    if not parts.hostname:
        raise InvalidMailUrlError("an smtp:// URL needs a host")
    starttls = _flag(options.get("starttls", "0"))
    insecure = _flag(options.get("insecure", "0"))
    if parts.username and not (implicit_tls or starttls or insecure):
        raise InvalidMailUrlError(
            "an smtp:// URL with a user would send the password unencrypted: use smtps://,"
            " add ?starttls=1, or ?insecure=1 for a relay nobody can listen in on"
        )
    return SmtpSettings(
        host=parts.hostname,
        port=port or (465 if implicit_tls else 25),
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
        implicit_tls=implicit_tls,
        starttls=starttls,
        timeout=_number(options, "timeout", 30.0),
        cafile=options.get("cafile"),
        insecure_auth=insecure,
    )


def _http_settings(
    parts: SplitResult, options: dict[str, str], *, token: str | None = None
) -> HttpApiSettings:
    if not parts.hostname:
        raise InvalidMailUrlError("an http(s):// mail URL needs a host")
    try:
        port = parts.port
    except ValueError:
        raise InvalidMailUrlError("the mail URL's port is not a number") from None
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    netloc = host if port is None else f"{host}:{port}"
    # The credentials are sent as a bearer token, never as part of the URL.
    endpoint = urlunsplit((parts.scheme, netloc, parts.path or ("" if token else "/"), "", ""))
    timeout = _number(options, "timeout", 30.0)
    if token is None and parts.password:
        token = unquote(parts.password)
    return HttpApiSettings(
        url=endpoint,
        token=token,
        cafile=options.get("cafile") or None,
        connect_timeout=min(5.0, timeout),
        read_timeout=timeout,
        retries=int(_number(options, "retries", 3)),
        backoff=_number(options, "backoff", 0.5),
    )


def _flag(value: str) -> bool:
    return value.strip().lower() in ("1", "true", "yes", "on")


def _number(options: dict[str, str], name: str, default: float) -> float:
    if name not in options:
        return default
    try:
        value = float(options[name])
    except ValueError:
        raise InvalidMailUrlError(f"the mail URL's {name} is not a number") from None
    if value < 0:
        raise InvalidMailUrlError(f"the mail URL's {name} must not be negative")
    return value
