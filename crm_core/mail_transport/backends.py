"""Mail backends chosen by ``CRM_MAIL_URL``, and the two development ones (console, files).

``smtp://user:pass@host:port[?starttls=1]``, ``smtps://…``, ``http(s)://…``
(an HTTP e-mail API; the URL's password, if any, is its bearer token),
``console://`` and ``file://DIR``. Query options: ``timeout`` (seconds),
``cafile`` and ``insecure`` (SMTP), ``retries`` and ``backoff`` (HTTP). An SMTP
password goes only over TLS (``smtps://`` or ``?starttls=1``) unless the URL
says ``?insecure=1``.
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
from crm_core.mail_transport.rate_limit import RateLimitedBackend, TokenBucket
from crm_core.mail_transport.smtp import SmtpBackend, SmtpSettings

__all__ = [
    "ConsoleBackend",
    "DeliveryError",
    "FileBackend",
    "HttpApiBackend",
    "InvalidMailUrlError",
    "MailBackend",
    "PermanentDeliveryError",
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
    raise InvalidMailUrlError(
        f"unknown mail URL scheme {scheme or '(none)'!r}: use smtp, smtps, http(s), console or file"
    )


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


def _http_settings(parts: SplitResult, options: dict[str, str]) -> HttpApiSettings:
    if not parts.hostname:
        raise InvalidMailUrlError("an http(s):// mail URL needs a host")
    try:
        port = parts.port
    except ValueError:
        raise InvalidMailUrlError("the mail URL's port is not a number") from None
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    netloc = host if port is None else f"{host}:{port}"
    # The credentials are sent as a bearer token, never as part of the URL.
    endpoint = urlunsplit((parts.scheme, netloc, parts.path or "/", "", ""))
    timeout = _number(options, "timeout", 30.0)
    return HttpApiSettings(
        url=endpoint,
        token=unquote(parts.password) if parts.password else None,
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
