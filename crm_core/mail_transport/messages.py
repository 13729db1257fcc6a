"""Outbound messages built with ``email.message.EmailMessage`` and the default policy.

The default policy refuses a CR or LF in any header value, which is what
keeps a contact's name or a template's subject from injecting headers; this
module turns that refusal into a clean ``InvalidMessageError``.
"""

from __future__ import annotations

import enum
import functools
from collections.abc import Sequence
from dataclasses import dataclass, field
from email import policy
from email.headerregistry import Address, BaseHeader, HeaderRegistry, UnstructuredHeader
from email.message import EmailMessage
from email.policy import Policy
from email.utils import format_datetime, make_msgid

from crm_core.db import utcnow
from crm_core.errors import PermanentError


class TokenListHeader(UnstructuredHeader, BaseHeader):
    """A header holding a list of ``<…>`` tokens (message ids, URLs), folded between tokens only.

    The standard library treats ``In-Reply-To``, ``References`` and
    ``List-Unsubscribe`` as unstructured text, and folds a token longer than a
    line into RFC 2047 encoded-words (``=?utf-8?q?=3C…?=``): mail clients then
    no longer see the message id (the reply loses its thread) or the URL (the
    one-click unsubscribe is gone). Here a line breaks only between tokens, and
    a token longer than a line stays whole on a line of its own (RFC 5322
    allows 998 characters).
    """

    def fold(self, *, policy: Policy) -> str:
        value = str(self)
        if not value.isascii():  # not a token list we made: leave it to the standard folding
            return str(super().fold(policy=policy))
        limit = policy.max_line_length or 998
        head = f"{self.name}:"
        lines, line = [], head
        for token in value.split():
            if line != head and len(line) + 1 + len(token) > limit:
                lines.append(line)
                line = ""
            line += " " + token
        lines.append(line)
        return policy.linesep.join(lines) + policy.linesep


class _HeaderClasses(HeaderRegistry):
    """The standard header registry, with each header's class made once.

    ``HeaderRegistry`` builds a new class with ``type()`` every time a header
    is set or counted, a good part of the cost of building a message; the
    classes it builds for one name are all alike, so one per name is kept.
    Message-id and URL lists are ``TokenListHeader``s.
    """

    def __init__(self) -> None:
        super().__init__()
        for name in ("in-reply-to", "references", "list-unsubscribe"):
            self.map_to_type(name, TokenListHeader)
        self._made: dict[str, type[BaseHeader]] = {}

    def __getitem__(self, name: str) -> type[BaseHeader]:
        key = name.lower()
        made = self._made.get(key)
        if made is None:
            made = self._made[key] = super().__getitem__(name)
        return made


# ``policy.default`` (CR/LF refused, RFC 5322 parsing) with the cached header classes.
POLICY = policy.default.clone(header_factory=_HeaderClasses())


class InvalidMessageError(PermanentError):
    """A message cannot be built: a header value with CR/LF, a malformed address…"""


class AutoSubmitted(enum.StrEnum):
    """RFC 3834: tells other robots not to answer our robots."""

    GENERATED = "auto-generated"
    REPLIED = "auto-replied"


@dataclass(frozen=True)
class OutboundMail:
    """Everything one outbound message says; ``build_message`` turns it into MIME."""

    sender: str
    to: str
    subject: str
    text: str
    html: str | None = None
    # Campaign mail: the one-click unsubscribe link (RFC 8058).
    unsubscribe_url: str | None = None
    auto_submitted: AutoSubmitted | None = None
    in_reply_to: str | None = None
    references: Sequence[str] = field(default_factory=tuple)
    # When None a new one is made on the sender's domain.
    message_id: str | None = None
    reply_to: str | None = None


def build_message(mail: OutboundMail) -> EmailMessage:
    """The MIME message for ``mail``: text, with an HTML alternative when given."""
    message = EmailMessage(policy=POLICY)
    try:
        _set_headers(message, mail)
        message.set_content(mail.text, cte=_transfer_encoding(mail.text))
        if mail.html is not None:
            message.add_alternative(mail.html, subtype="html", cte=_transfer_encoding(mail.html))
    except (ValueError, TypeError, IndexError) as exc:
        # email raises ValueError for CR/LF in a value and for unparseable addresses.
        raise InvalidMessageError(f"cannot build the message: {exc}") from None
    return message


def new_message_id(sender: str) -> str:
    """A fresh ``<…@domain>`` Message-ID on the sender's domain."""
    return make_msgid(domain=sender_domain(sender))


def sender_domain(sender: str) -> str:
    """The domain of a From value like ``CRM <crm@example.com>``; ``localhost`` when absent."""
    try:
        addresses: tuple[Address, ...] = _from_header(sender).addresses  # type: ignore[attr-defined]
    except (ValueError, TypeError, IndexError) as exc:
        raise InvalidMessageError(f"cannot read the sender {sender!r}: {exc}") from None
    domain = addresses[0].domain if addresses else ""
    return domain or "localhost"


@functools.lru_cache(maxsize=64)
def _from_header(sender: str) -> BaseHeader:
    """The parsed From header of ``sender``, parsed once: a batch has one sender.

    Header objects are immutable, so one may be set on many messages; setting it
    skips the parse (and its CR/LF check, done here once).
    """
    message = EmailMessage(policy=POLICY)
    message["From"] = sender
    header: BaseHeader = message["From"]
    return header


def envelope_sender(message: EmailMessage) -> str:
    """The bare address of the message's From, for the SMTP envelope."""
    addresses: tuple[Address, ...] = message["From"].addresses
    return addresses[0].addr_spec


def envelope_recipients(message: EmailMessage) -> list[str]:
    """The bare addresses of To, Cc and Bcc, for the SMTP envelope."""
    recipients: list[str] = []
    for name in ("To", "Cc", "Bcc"):
        for header in message.get_all(name, []):
            recipients.extend(address.addr_spec for address in header.addresses)
    return recipients


def _transfer_encoding(body: str) -> str | None:
    # Non-ASCII bodies go quoted-printable, so the whole message is 7-bit and
    # any SMTP server takes it without 8BITMIME; ASCII keeps the default (7bit).
    return None if body.isascii() else "quoted-printable"


def _check_addresses(message: EmailMessage, name: str) -> None:
    addresses: tuple[Address, ...] = message[name].addresses
    if not addresses:
        raise ValueError(f"{name} must hold an address")
    for address in addresses:
        if not address.username or not address.domain:
            raise ValueError(f"{name}: {str(address)!r} is not an e-mail address")


def _set_headers(message: EmailMessage, mail: OutboundMail) -> None:
    message["From"] = _from_header(mail.sender)
    message["To"] = mail.to
    _check_addresses(message, "From")
    _check_addresses(message, "To")
    if mail.reply_to:
        message["Reply-To"] = mail.reply_to
    message["Subject"] = mail.subject
    message["Date"] = format_datetime(utcnow())
    message["Message-ID"] = mail.message_id or new_message_id(mail.sender)
    if mail.in_reply_to:
        message["In-Reply-To"] = mail.in_reply_to
    if mail.references:
        message["References"] = " ".join(mail.references)
    if mail.unsubscribe_url:
        message["List-Unsubscribe"] = f"<{mail.unsubscribe_url}>"
        message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    if mail.auto_submitted is not None:
        message["Auto-Submitted"] = str(mail.auto_submitted)
