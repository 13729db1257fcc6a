"""A real SMTP server on loopback for tests (aiosmtpd), recording what it receives.

Tests can make it refuse a sender or a recipient with any reply, answer DATA
with an error, or drop the connection while answering DATA, to check how a
client classifies each failure. TLS (implicit or STARTTLS) uses a throwaway
self-signed certificate for 127.0.0.1.
"""

from __future__ import annotations

import shutil
import ssl
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from tests.services import free_port, unavailable


@dataclass
class ReceivedMail:
    """One message as the server took it: envelope and parsed content."""

    mail_from: str
    rcpt_tos: list[str]
    raw: bytes
    session: Any

    @property
    def message(self) -> EmailMessage:
        parsed = message_from_bytes(self.raw, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        return parsed


@dataclass
class RecordingHandler:
    """aiosmtpd handler: records mail, and misbehaves on request."""

    received: list[ReceivedMail] = field(default_factory=list)
    refuse_mail: str | None = None
    refuse_rcpt: dict[str, str] = field(default_factory=dict)
    data_reply: str | None = None
    # Take the message, then close the connection instead of answering.
    drop_after_data: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_MAIL(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        if self.refuse_mail:
            return self.refuse_mail
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        if address in self.refuse_rcpt:
            return self.refuse_rcpt[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.data_reply:
            return self.data_reply
        with self.lock:
            self.received.append(
                ReceivedMail(envelope.mail_from, list(envelope.rcpt_tos), envelope.content, session)
            )
        if self.drop_after_data:
            server.transport.abort()
        return "250 Message accepted for delivery"

    @property
    def sessions(self) -> int:
        """How many distinct SMTP connections delivered the received mail."""
        return len({id(mail.session) for mail in self.received})


@dataclass
class SmtpTestServer:
    handler: RecordingHandler
    port: int
    host: str = "127.0.0.1"

    def url(self, scheme: str = "smtp", userinfo: str = "", query: str = "") -> str:
        at = f"{userinfo}@" if userinfo else ""
        return f"{scheme}://{at}{self.host}:{self.port}{'?' + query if query else ''}"


@contextmanager
def running_smtp_server(**controller_options: Any) -> Iterator[SmtpTestServer]:
    """Start an SMTP server on a free loopback port for the duration of the block."""
    handler = RecordingHandler()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port, **controller_options)
    controller.start()
    try:
        yield SmtpTestServer(handler=handler, port=port)
    finally:
        controller.stop()


@pytest.fixture
def smtp_server() -> Iterator[SmtpTestServer]:
    """A recording SMTP server on loopback; import this fixture into a test module to use it."""
    with running_smtp_server() as server:
        yield server


def self_signed_certificate(
    directory: Path, names: str = "IP:127.0.0.1,DNS:localhost"
) -> tuple[Path, Path]:
    """A certificate and key for ``names`` (default 127.0.0.1 and localhost), made with openssl."""
    if shutil.which("openssl") is None:
        unavailable("openssl", "needed to make a test certificate")
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            "-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1",
            "-addext", f"subjectAltName={names}",
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key


def server_tls_context(cert: Path, key: Path) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context


def password_authenticator(username: str, password: str) -> Any:
    """An aiosmtpd authenticator accepting exactly one login."""

    def authenticate(
        server: Any, session: Any, envelope: Any, mechanism: str, data: Any
    ) -> AuthResult:
        ok = isinstance(data, LoginPassword) and (data.login, data.password) == (
            username.encode(),
            password.encode(),
        )
        # handled=False: aiosmtpd then answers 535 itself.
        return AuthResult(success=ok, handled=False)

    return authenticate
