"""The SMTP backend against a real SMTP server on loopback: delivery, reuse, TLS, failures."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from crm_core.mail_transport.backends import InvalidMailUrlError, SmtpBackend, backend_from_url
from crm_core.mail_transport.base import PermanentDeliveryError, TransientDeliveryError
from crm_core.mail_transport.messages import OutboundMail, build_message
from crm_core.mail_transport.smtp import SmtpSettings
from tests.services import free_port
from tests.smtp_server import (
    SmtpTestServer,
    password_authenticator,
    running_smtp_server,
    self_signed_certificate,
    server_tls_context,
)


def message_to(to: str, subject: str = "Hello", **extra: object):  # type: ignore[no-untyped-def]
    return build_message(
        OutboundMail(
            sender="Acme <crm@acme.example>",
            to=to,
            subject=subject,
            text="Hi",
            **extra,  # type: ignore[arg-type]
        )
    )


def test_a_batch_is_delivered_over_one_connection(smtp_server: SmtpTestServer) -> None:
    backend = backend_from_url(smtp_server.url())
    with backend:
        ids = [backend.send(message_to(f"r{n}@example.org", f"n{n}")) for n in range(5)]
    received = smtp_server.handler.received
    assert [mail.rcpt_tos for mail in received] == [[f"r{n}@example.org"] for n in range(5)]
    assert all(mail.mail_from == "crm@acme.example" for mail in received)
    assert smtp_server.handler.sessions == 1
    assert ids == [mail.message["Message-ID"] for mail in received]


def test_headers_arrive_intact(smtp_server: SmtpTestServer) -> None:
    # As long as real ones: a token, a Gmail message id.
    url = "https://crm.example.com/unsubscribe/eyJrIjo0MiwiYyI6N30.awablg.wouGGZ_goiMBJSP_fbbIWg"
    parent = "<CAFx9v8pQm2nJ0=" + "a1b2c3d4e5" * 5 + "@mail.gmail.com>"
    with backend_from_url(smtp_server.url()) as backend:
        backend.send(
            message_to("ann@example.org", "Grüße", unsubscribe_url=url, in_reply_to=parent)
        )
    (mail,) = smtp_server.handler.received
    assert mail.message["Subject"] == "Grüße"
    assert mail.message["List-Unsubscribe"] == f"<{url}>"
    assert mail.message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    # On the wire, not only once parsed: clients do not decode encoded-words in these.
    assert f"\r\nList-Unsubscribe: <{url}>\r\n".encode() in mail.raw
    assert f"\r\nIn-Reply-To: {parent}\r\n".encode() in mail.raw
    assert b"\r\n" in mail.raw


def test_a_refused_recipient_does_not_spoil_the_batch(smtp_server: SmtpTestServer) -> None:
    smtp_server.handler.refuse_rcpt["gone@example.org"] = "550 5.1.1 No such user"
    smtp_server.handler.refuse_rcpt["full@example.org"] = "452 4.2.2 Mailbox full"
    with backend_from_url(smtp_server.url()) as backend:
        backend.send(message_to("a@example.org"))
        with pytest.raises(PermanentDeliveryError, match="550") as permanent:
            backend.send(message_to("gone@example.org"))
        with pytest.raises(TransientDeliveryError, match="452") as transient:
            backend.send(message_to("full@example.org"))
        backend.send(message_to("b@example.org"))
    assert not permanent.value.maybe_sent
    assert not transient.value.maybe_sent
    assert [mail.rcpt_tos for mail in smtp_server.handler.received] == [
        ["a@example.org"],
        ["b@example.org"],
    ]
    assert smtp_server.handler.sessions == 1


@pytest.mark.parametrize(
    ("reply", "error"),
    [
        ("553 5.7.1 Sender rejected", PermanentDeliveryError),
        ("451 4.7.1 Greylisted", TransientDeliveryError),
    ],
)
def test_a_refused_sender_is_classified_by_its_code(
    smtp_server: SmtpTestServer, reply: str, error: type[Exception]
) -> None:
    smtp_server.handler.refuse_mail = reply
    with backend_from_url(smtp_server.url()) as backend, pytest.raises(error, match=reply[:3]):
        backend.send(message_to("a@example.org"))


@pytest.mark.parametrize(
    ("reply", "error"),
    [
        ("554 5.6.0 Message rejected", PermanentDeliveryError),
        ("451 4.3.0 Try later", TransientDeliveryError),
    ],
)
def test_a_refused_message_is_classified_by_its_code(
    smtp_server: SmtpTestServer, reply: str, error: type[Exception]
) -> None:
    smtp_server.handler.data_reply = reply
    with backend_from_url(smtp_server.url()) as backend:
        with pytest.raises(error, match=reply[:3]) as caught:
            backend.send(message_to("a@example.org"))
        assert not caught.value.maybe_sent  # type: ignore[attr-defined]
        smtp_server.handler.data_reply = None
        backend.send(message_to("b@example.org"))
    assert len(smtp_server.handler.received) == 1


def test_a_connection_lost_during_data_may_have_delivered(smtp_server: SmtpTestServer) -> None:
    smtp_server.handler.drop_after_data = True
    with backend_from_url(smtp_server.url()) as backend:
        with pytest.raises(TransientDeliveryError) as caught:
            backend.send(message_to("a@example.org"))
        assert caught.value.maybe_sent
        # The server did take it: this is why the caller records "unknown" and never resends.
        assert len(smtp_server.handler.received) == 1
        smtp_server.handler.drop_after_data = False
        backend.send(message_to("b@example.org"))  # reconnects by itself
    assert smtp_server.handler.sessions == 2


def test_connection_refused_is_transient_and_nothing_was_sent() -> None:
    backend = backend_from_url(f"smtp://127.0.0.1:{free_port()}?timeout=5")
    with pytest.raises(TransientDeliveryError, match="cannot reach") as caught:
        backend.open()
    assert not caught.value.maybe_sent
    with pytest.raises(TransientDeliveryError):
        backend.send(message_to("a@example.org"))


def test_login_and_bad_credentials() -> None:
    options = {
        "authenticator": password_authenticator("crm", "p@ss word"),
        "auth_require_tls": False,
    }
    with running_smtp_server(**options) as server:
        # Plain TCP on loopback: the URL has to say that a password may go in clear.
        url = server.url(userinfo="crm:p%40ss%20word", query="insecure=1")
        with backend_from_url(url) as backend:
            backend.send(message_to("a@example.org"))
        assert len(server.handler.received) == 1
        with pytest.raises(PermanentDeliveryError, match="login refused"):
            backend_from_url(server.url(userinfo="crm:wrong", query="insecure=1")).open()


def test_auth_over_plain_tcp_is_refused_unless_the_url_says_insecure() -> None:
    attempts: list[str] = []
    accept = password_authenticator("crm", "secret")

    def recording(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> Any:
        attempts.append(mechanism)
        return accept(server, session, envelope, mechanism, data)

    with running_smtp_server(authenticator=recording, auth_require_tls=False) as server:
        # A URL that would log in without TLS is refused as soon as it is read...
        with pytest.raises(InvalidMailUrlError, match=r"unencrypted.*insecure=1"):
            backend_from_url(server.url(userinfo="crm:secret"))
        # ...and a backend built any other way never sends AUTH over plain TCP either.
        settings = SmtpSettings(host=server.host, port=server.port, username="crm", password="x")
        with pytest.raises(PermanentDeliveryError, match="not encrypted"):
            SmtpBackend(settings).send(message_to("a@example.org"))
        assert attempts == []
        assert server.handler.received == []

        with backend_from_url(server.url(userinfo="crm:secret", query="insecure=1")) as backend:
            backend.send(message_to("a@example.org"))
        assert len(attempts) == 1
        assert len(server.handler.received) == 1


def test_starttls_upgrades_before_login(tmp_path: Path) -> None:
    cert, key = self_signed_certificate(tmp_path)
    options = {
        "tls_context": server_tls_context(cert, key),
        "require_starttls": True,
        "authenticator": password_authenticator("crm", "secret"),
    }
    with running_smtp_server(**options) as server:
        url = server.url(userinfo="crm:secret", query=f"starttls=1&cafile={cert}")
        with backend_from_url(url) as backend:
            backend.send(message_to("a@example.org"))
        assert len(server.handler.received) == 1
        # Without STARTTLS this server refuses to go on: a 5xx, so permanent.
        with pytest.raises(PermanentDeliveryError):
            backend_from_url(server.url()).send(message_to("b@example.org"))


def test_smtps_speaks_tls_from_the_start_and_checks_the_certificate(tmp_path: Path) -> None:
    cert, key = self_signed_certificate(tmp_path)
    with running_smtp_server(ssl_context=server_tls_context(cert, key)) as server:
        with backend_from_url(server.url("smtps", query=f"cafile={cert}")) as backend:
            backend.send(message_to("a@example.org"))
        assert len(server.handler.received) == 1
        # Not trusting the certificate is a configuration fault: retrying will not fix it.
        with pytest.raises(PermanentDeliveryError, match="certificate"):
            backend_from_url(server.url("smtps", query="timeout=5")).open()


def test_close_is_safe_twice_and_without_open() -> None:
    backend = SmtpBackend(SmtpSettings(host="127.0.0.1", port=free_port()))
    backend.close()
    backend.close()


def test_a_non_ascii_address_uses_smtputf8_when_the_server_has_it() -> None:
    with running_smtp_server(enable_SMTPUTF8=True) as server:
        with backend_from_url(server.url()) as backend:
            backend.send(message_to("zoë@example.org", "Grüße"))
        (mail,) = server.handler.received
        assert mail.rcpt_tos == ["zoë@example.org"]
        assert mail.message["Subject"] == "Grüße"
    with running_smtp_server(enable_SMTPUTF8=False) as server:
        with (
            backend_from_url(server.url()) as backend,
            pytest.raises(PermanentDeliveryError, match="SMTPUTF8"),
        ):
            backend.send(message_to("zoë@example.org"))
        assert server.handler.received == []


def test_a_replaced_ca_bundle_is_read_again(tmp_path: Path) -> None:
    # The TLS context is built once per bundle; a renewed certificate must not need a restart.
    first_dir, second_dir = tmp_path / "one", tmp_path / "two"
    first_dir.mkdir()
    second_dir.mkdir()
    cert, key = self_signed_certificate(first_dir)
    with (
        running_smtp_server(ssl_context=server_tls_context(cert, key)) as server,
        backend_from_url(server.url("smtps", query=f"cafile={cert}")) as backend,
    ):
        backend.send(message_to("a@example.org"))
    renewed, renewed_key = self_signed_certificate(second_dir)
    cert.write_bytes(renewed.read_bytes())  # the bundle at the same path now trusts the new one
    with running_smtp_server(ssl_context=server_tls_context(renewed, renewed_key)) as server:
        with backend_from_url(server.url("smtps", query=f"cafile={cert}")) as backend:
            backend.send(message_to("b@example.org"))
        assert len(server.handler.received) == 1
