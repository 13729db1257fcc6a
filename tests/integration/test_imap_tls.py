"""TLS from the start (imaps://) and STARTTLS, with the server's certificate verified."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from crm_core.mailboxes.imap import MailboxError, check, poll
from crm_core.mailboxes.models import Mailbox, MailboxSecurity
from tests.imap_server import DovecotServer, dovecot_server, support_request


@pytest.fixture
def tls_server() -> Iterator[DovecotServer]:
    with dovecot_server(tls=True) as server:
        server.append([support_request(1), support_request(2)])
        yield server


def secured_mailboxes(server: DovecotServer) -> list[Mailbox]:
    return [
        server.mailbox(security=MailboxSecurity.TLS, port=server.tls_port),
        server.mailbox(security=MailboxSecurity.STARTTLS),
    ]


def test_an_untrusted_certificate_is_refused(tls_server: DovecotServer) -> None:
    for mailbox in secured_mailboxes(tls_server):
        with pytest.raises(MailboxError, match=r"cannot connect: .*certificate verify failed"):
            check(mailbox)


def test_a_trusted_certificate_works_both_ways(
    tls_server: DovecotServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # OpenSSL's default trust store honours SSL_CERT_FILE.
    monkeypatch.setenv("SSL_CERT_FILE", str(tls_server.certificate))
    tls, starttls = secured_mailboxes(tls_server)
    assert check(tls) == 2
    assert check(starttls) == 2
    assert poll(starttls, store=lambda message: True).stored == 2
    assert poll(tls, store=lambda message: True).stored == 2  # its own last_uid: 0
