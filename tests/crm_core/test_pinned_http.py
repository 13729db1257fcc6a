"""Pinned sessions against real HTTP(S) servers on loopback: one lookup, the name kept."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from crm_core.pinned_http import (
    MAX_RESPONSE_BYTES,
    pinned_session,
    read_capped,
    retry_after_seconds,
)
from tests.mail_api_server import HUGE, Answer, MailApi, Rebinding, running_mail_api
from tests.smtp_server import self_signed_certificate, server_tls_context


@pytest.fixture
def public_and_internal() -> Iterator[tuple[MailApi, MailApi]]:
    """The address that is checked, and an internal service on the same port elsewhere."""
    with (
        running_mail_api() as checked,
        running_mail_api(host="127.0.0.2", port=checked.port) as internal,
    ):
        yield checked, internal


def test_every_request_goes_to_the_address_resolved_first(
    public_and_internal: tuple[MailApi, MailApi],
) -> None:
    checked, internal = public_and_internal
    resolver = Rebinding("127.0.0.1", "127.0.0.2")
    url = f"http://hooks.rebind.test:{checked.port}/v1/send"
    with pinned_session(url, resolver=resolver) as session:
        for _ in range(2):
            assert session.post(url, json={"n": 1}, timeout=5).status_code == 200
    assert resolver.calls == [("hooks.rebind.test", checked.port)]
    assert [r.headers["Host"] for r in checked.requests] == [
        f"hooks.rebind.test:{checked.port}"
    ] * 2
    assert internal.requests == []


def test_a_pinned_session_refuses_other_origins() -> None:
    session = pinned_session("http://hooks.example/x", resolver=lambda host, port: ["127.0.0.1"])
    with pytest.raises(ValueError, match="pinned"):
        session.get("http://169.254.169.254/latest/meta-data/")
    with pytest.raises(ValueError, match="pinned"):
        session.get("http://hooks.example:8080/x")


def test_a_name_that_does_not_resolve_is_a_connection_error() -> None:
    def nowhere(host: str, port: int) -> list[str]:
        raise OSError("Name or service not known")

    with pytest.raises(ConnectionError, match=r"cannot resolve hooks\.example"):
        pinned_session("https://hooks.example/x", resolver=nowhere)


def test_tls_sends_the_name_and_checks_the_certificate_for_it(tmp_path: Path) -> None:
    cert, key = self_signed_certificate(tmp_path, names="DNS:api.pinned.test")
    with running_mail_api(tls=server_tls_context(cert, key)) as api:
        url = f"https://api.pinned.test:{api.port}/v1/send"
        with pinned_session(url, resolver=lambda host, port: ["127.0.0.1"]) as session:
            answer = session.post(url, json={}, timeout=5, verify=str(cert))
        assert answer.status_code == 200
        assert api.server_names == ["api.pinned.test"]
        # The same address under a name the certificate does not carry is refused.
        other = f"https://other.pinned.test:{api.port}/v1/send"
        with (
            pinned_session(other, resolver=lambda host, port: ["127.0.0.1"]) as session,
            pytest.raises(requests.exceptions.SSLError),
        ):
            session.post(other, json={}, timeout=5, verify=str(cert))


def test_an_answer_is_read_only_up_to_the_cap() -> None:
    with running_mail_api() as api:
        api.script.append(Answer(raw=b"x" * HUGE))
        with pinned_session(api.url, resolver=lambda host, port: ["127.0.0.1"]) as session:
            response = session.post(api.url, json={}, timeout=5, stream=True)
            body = read_capped(response)
        assert body == b"x" * MAX_RESPONSE_BYTES
        assert api.answered.get(timeout=30) is False  # the rest was never taken


NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("120", 120.0),
        (" 7 ", 7.0),
        ("Thu, 01 Jan 2026 00:01:40 GMT", 100.0),
        # No zone: UTC, as RFC 9110 says of every HTTP date.
        ("Thu, 01 Jan 2026 00:01:40", 100.0),
        ("Thu, 01 Jan 2026 00:01:40 -0000", 100.0),
        ("Thu Jan  1 00:01:40 2026", 100.0),
        ("Thursday, 01-Jan-26 00:01:40 GMT", 100.0),
        ("Wed, 31 Dec 2025 00:00:00 GMT", 0.0),  # in the past: at once
        ("soon", None),
        ("-5", None),
        ("²", None),
        ("", None),
        (None, None),
    ],
)
def test_retry_after_follows_rfc_9110(value: str | None, seconds: float | None) -> None:
    assert retry_after_seconds(value, now=NOW) == seconds
