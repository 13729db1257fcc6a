"""SMTP delivery over one connection per batch: plain, STARTTLS or implicit TLS (smtps).

The transaction is driven step by step (MAIL, RCPT, DATA) rather than with
``sendmail`` so a failure can be placed: before DATA nothing can have been
delivered; a connection lost while the server answers DATA may have been.
"""

from __future__ import annotations

import functools
import os
import smtplib
import ssl
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage

from crm_core.mail_transport.base import (
    BatchBackend,
    DeliveryError,
    PermanentDeliveryError,
    TransientDeliveryError,
)
from crm_core.mail_transport.messages import envelope_recipients, envelope_sender

# CRLF line endings on the wire; SMTPUTF8 only when an address needs it.
_WIRE = policy.SMTP
_WIRE_UTF8 = policy.SMTPUTF8


@dataclass(frozen=True)
class SmtpSettings:
    """Where and how to connect; ``implicit_tls`` is smtps (port 465), ``starttls`` upgrades."""

    host: str
    port: int
    username: str | None = None
    password: str | None = None
    implicit_tls: bool = False
    starttls: bool = False
    timeout: float = 30.0
    # A CA bundle to trust instead of the system's (a private relay's own certificate).
    cafile: str | None = None
    # Send the password over a connection without TLS (``?insecure=1``): only for a
    # relay on the same host or network, where nobody can listen in.
    insecure_auth: bool = False


def tls_context(cafile: str | None) -> ssl.SSLContext:
    """The verifying TLS context for ``cafile`` (the system's CAs when None).

    Loading a CA bundle takes tens of milliseconds, once per batch if built per
    connection; a context is safe to share between connections and threads, so
    it is built once per bundle (again when the file changes).
    """
    modified = os.stat(cafile).st_mtime_ns if cafile else None
    return _tls_context(cafile, modified)


@functools.lru_cache(maxsize=16)
def _tls_context(cafile: str | None, _modified: int | None) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=cafile)


def classify_reply(code: int, reply: bytes | str, *, step: str) -> DeliveryError:
    """An SMTP reply code as an error: 5xx permanent, anything else transient."""
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else reply
    message = f"SMTP {step} refused: {code} {text}".strip()
    if 500 <= code < 600:
        return PermanentDeliveryError(message)
    return TransientDeliveryError(message)


def _check_encrypted(connection: smtplib.SMTP, *, insecure_auth: bool) -> None:
    """Refuse to send a password over plain TCP unless the URL allowed it.

    Checked on the socket itself, so no path (a server that stops offering
    STARTTLS, a settings object built by hand) can reach AUTH in clear.
    """
    if insecure_auth or isinstance(connection.sock, ssl.SSLSocket):
        return
    raise PermanentDeliveryError(
        "SMTP AUTH refused: the connection is not encrypted; use smtps:// or ?starttls=1"
        " (or ?insecure=1 for a relay nobody can listen in on)"
    )


class SmtpBackend(BatchBackend):
    """Sends through an SMTP server, reusing one connection for every message of a batch."""

    def __init__(self, settings: SmtpSettings) -> None:
        self.settings = settings
        self._connection: smtplib.SMTP | None = None

    def open(self) -> None:
        """Connect, say EHLO, upgrade to TLS if asked, and log in."""
        if self._connection is not None:
            return
        try:
            connection = self._connect()
        except smtplib.SMTPAuthenticationError as exc:
            raise PermanentDeliveryError(f"SMTP login refused: {exc.smtp_code}") from None
        except smtplib.SMTPNotSupportedError as exc:
            raise PermanentDeliveryError(f"SMTP server lacks a feature: {exc}") from None
        except smtplib.SMTPResponseException as exc:
            raise classify_reply(exc.smtp_code, exc.smtp_error, step="connection") from None
        except ssl.SSLCertVerificationError as exc:
            raise PermanentDeliveryError(f"SMTP server certificate refused: {exc}") from None
        except OSError as exc:
            raise TransientDeliveryError(f"cannot reach the SMTP server: {exc}") from None
        self._connection = connection

    def _connect(self) -> smtplib.SMTP:
        s = self.settings
        connection: smtplib.SMTP
        if s.implicit_tls:
            context = tls_context(s.cafile)
            connection = smtplib.SMTP_SSL(s.host, s.port, timeout=s.timeout, context=context)
        else:
            connection = smtplib.SMTP(s.host, s.port, timeout=s.timeout)
        try:
            connection.ehlo()
            if s.starttls:
                connection.starttls(context=tls_context(s.cafile))
                connection.ehlo()
            if s.username:
                _check_encrypted(connection, insecure_auth=s.insecure_auth)
                connection.login(s.username, s.password or "")
        except BaseException:
            connection.close()
            raise
        return connection

    def send(self, message: EmailMessage, *, idempotency_key: str | None = None) -> str:
        """Send one message; the returned id is its Message-ID (SMTP has no other)."""
        # SMTP has no idempotency key: at-most-once is the caller's state machine.
        self.open()
        connection = self._connection
        assert connection is not None
        sender, recipients = envelope_sender(message), envelope_recipients(message)
        data, options = self._wire_form(connection, message, [sender, *recipients])
        self._envelope(connection, sender, recipients, options)
        self._data(connection, data)
        return str(message["Message-ID"] or "")

    def _wire_form(
        self, connection: smtplib.SMTP, message: EmailMessage, addresses: list[str]
    ) -> tuple[bytes, list[str]]:
        if all(address.isascii() for address in addresses):
            return message.as_bytes(policy=_WIRE), []
        if not connection.has_extn("smtputf8"):
            raise PermanentDeliveryError(
                "a non-ASCII address needs SMTPUTF8, which the server lacks"
            )
        return message.as_bytes(policy=_WIRE_UTF8), ["SMTPUTF8", "BODY=8BITMIME"]

    def _envelope(
        self, connection: smtplib.SMTP, sender: str, recipients: list[str], options: list[str]
    ) -> None:
        try:
            code, reply = connection.mail(sender, options)
            if code != 250:
                raise classify_reply(code, reply, step="MAIL FROM")
            for recipient in recipients:
                code, reply = connection.rcpt(recipient)
                if code not in (250, 251):
                    raise classify_reply(code, reply, step="RCPT TO")
        except DeliveryError:
            self._reset()
            raise
        except OSError as exc:
            # Nothing was sent: no DATA yet. SMTPServerDisconnected is an OSError too.
            self._drop()
            raise TransientDeliveryError(f"SMTP connection lost before DATA: {exc}") from None

    def _data(self, connection: smtplib.SMTP, data: bytes) -> None:
        try:
            code, reply = connection.data(data)
        except smtplib.SMTPDataError as exc:
            # The server refused the DATA command itself: the content never went.
            self._reset()
            raise classify_reply(exc.smtp_code, exc.smtp_error, step="DATA") from None
        except OSError as exc:
            self._drop()
            raise TransientDeliveryError(
                f"SMTP connection lost during DATA: {exc}", maybe_sent=True
            ) from None
        if code != 250:
            self._reset()
            raise classify_reply(code, reply, step="DATA")

    def _reset(self) -> None:
        """RSET after a refusal, so the connection serves the next message."""
        if self._connection is None:
            return
        try:
            self._connection.rset()
        except OSError:
            self._drop()

    def _drop(self) -> None:
        if self._connection is not None:
            self._connection.close()
        self._connection = None

    def close(self) -> None:
        """QUIT politely; a server already gone is not an error."""
        if self._connection is None:
            return
        try:
            self._connection.quit()
        except OSError:
            pass
        finally:
            self._drop()
