"""Mailbox URLs: what ``crm mailboxes add --url`` accepts, and the clean errors for the rest."""

from __future__ import annotations

import pytest

from crm_core.errors import InvalidInput
from crm_core.mailboxes.models import MailboxSecurity
from crm_core.mailboxes.services import MailboxAddress, parse_mailbox_url


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "imap://support:pw@mail.example.com:1143/Support",
            MailboxAddress(
                "mail.example.com", 1143, MailboxSecurity.PLAIN, "support", "pw", "Support"
            ),
        ),
        (
            "imaps://support:pw@mail.example.com",
            MailboxAddress("mail.example.com", 993, MailboxSecurity.TLS, "support", "pw", "INBOX"),
        ),
        (
            "imap://support:pw@mail.example.com/?starttls=1",
            MailboxAddress("mail.example.com", 143, MailboxSecurity.STARTTLS, "support", "pw"),
        ),
        (
            "imap://help%40example.com:p%40ss%3Aw%2Fd@mail.example.com/INBOX%2FTickets?starttls=0",
            MailboxAddress(
                "mail.example.com", 143, MailboxSecurity.PLAIN,
                "help@example.com", "p@ss:w/d", "INBOX/Tickets",
            ),
        ),
        (
            "IMAPS://u:@Mail.Example.COM:10993/Entw%C3%BCrfe",
            MailboxAddress("mail.example.com", 10993, MailboxSecurity.TLS, "u", "", "Entwürfe"),
        ),
    ],
)  # fmt: skip
def test_parse_mailbox_url(url: str, expected: MailboxAddress) -> None:
    assert parse_mailbox_url(url) == expected


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("pop3://u:p@host/", "imap:// or imaps://"),
        ("mail.example.com", "imap:// or imaps://"),
        ("imap://u:p@host:99999/", "port"),
        ("imap://u:p@host:abc/", "port"),
        ("imap://u:p@/INBOX", "host"),
        ("imap://host/INBOX", "user and a password"),
        ("imap://user@host/INBOX", "user and a password"),
        ("imaps://u:p@host/?starttls=1", "starttls"),
        ("imap://u:p@host/?starttls=maybe", "starttls"),
    ],
)
def test_bad_urls_are_invalid_input_about_the_url(url: str, message: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_mailbox_url(url)
    assert [e.loc for e in caught.value.errors] == [("url",)]
    assert message in str(caught.value)


def test_the_password_is_not_in_the_address_repr() -> None:
    address = parse_mailbox_url("imap://u:hunter2-secret@host/")
    assert "hunter2-secret" not in repr(address)
