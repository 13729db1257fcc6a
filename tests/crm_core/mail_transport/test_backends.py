"""Choosing a backend from CRM_MAIL_URL, and the console and file backends."""

from __future__ import annotations

import io
import os
from email import message_from_bytes, policy
from pathlib import Path

import pytest

from crm_core.mail_transport.backends import (
    ConsoleBackend,
    FileBackend,
    HttpApiBackend,
    InvalidMailUrlError,
    SmtpBackend,
    backend_from_url,
)
from crm_core.mail_transport.base import TransientDeliveryError
from crm_core.mail_transport.messages import OutboundMail, build_message
from crm_core.mail_transport.rate_limit import RateLimitedBackend


def message(subject: str = "Hello"):  # type: ignore[no-untyped-def]
    return build_message(
        OutboundMail(sender="crm@acme.example", to="ann@example.org", subject=subject, text="Hi")
    )


def test_smtp_urls() -> None:
    backend = backend_from_url("smtp://us%40er:p%3Ass@mail.example:2525?starttls=1&timeout=7")
    assert isinstance(backend, SmtpBackend)
    s = backend.settings
    assert (s.host, s.port, s.username, s.password) == ("mail.example", 2525, "us@er", "p:ss")
    assert (s.starttls, s.implicit_tls, s.timeout) == (True, False, 7.0)
    plain = backend_from_url("smtp://mail.example")
    assert isinstance(plain, SmtpBackend)
    assert (plain.settings.port, plain.settings.username, plain.settings.starttls) == (
        25,
        None,
        False,
    )
    secure = backend_from_url("smtps://mail.example")
    assert isinstance(secure, SmtpBackend)
    assert (secure.settings.port, secure.settings.implicit_tls) == (465, True)


def test_http_urls() -> None:
    backend = backend_from_url("https://key:t0ken@api.mail.example/v3/send?retries=5&backoff=0.1")
    assert isinstance(backend, HttpApiBackend)
    s = backend.settings
    assert (s.url, s.token, s.retries, s.backoff) == (
        "https://api.mail.example/v3/send",
        "t0ken",
        5,
        0.1,
    )


def test_development_urls(tmp_path: Path) -> None:
    assert isinstance(backend_from_url("console://"), ConsoleBackend)
    file_backend = backend_from_url(f"file://{tmp_path}/out box")
    assert isinstance(file_backend, FileBackend)
    assert file_backend.directory == tmp_path / "out box"


def test_a_rate_wraps_the_backend() -> None:
    limited = backend_from_url("console://", rate_per_second=10)
    assert isinstance(limited, RateLimitedBackend)
    assert isinstance(limited.inner, ConsoleBackend)
    assert limited.bucket.rate == 10


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("", "unknown mail URL scheme"),
        ("ftp://x", "unknown mail URL scheme"),
        ("smtp://", "needs a host"),
        ("smtp://host:port", "port is not a number"),
        ("smtp://host?timeout=soon", "timeout is not a number"),
        ("smtp://host?timeout=-1", "must not be negative"),
        ("https://", "needs a host"),
        ("file://", "needs a directory"),
    ],
)
def test_bad_urls_say_what_is_wrong(url: str, words: str) -> None:
    with pytest.raises(InvalidMailUrlError, match=words):
        backend_from_url(url)


def test_the_console_backend_prints_the_message() -> None:
    stream = io.StringIO()
    sent = message("Printed")
    with ConsoleBackend(stream) as backend:
        provider_id = backend.send(sent)
    assert provider_id == sent["Message-ID"]
    assert "Subject: Printed" in stream.getvalue()


def test_the_file_backend_writes_one_complete_eml_per_message(tmp_path: Path) -> None:
    outbox = tmp_path / "outbox"
    with FileBackend(outbox) as backend:
        names = [backend.send(message(f"n{n}")) for n in range(3)]
    assert sorted(os.listdir(outbox)) == sorted(names)
    assert all(name.endswith(".eml") for name in names)
    subjects = {
        message_from_bytes((outbox / name).read_bytes(), policy=policy.default)["Subject"]
        for name in names
    }
    assert subjects == {"n0", "n1", "n2"}


def test_a_file_that_cannot_be_written_is_transient(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    backend = FileBackend(tmp_path)
    backend.directory = blocker  # a file where the directory should be
    with pytest.raises(TransientDeliveryError, match="cannot use"):
        backend.send(message())
    assert [p.name for p in tmp_path.iterdir()] == ["not-a-dir"]
