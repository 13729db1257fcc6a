"""Mailboxes: add, list and remove them, and lease one to a single poller at a time."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from urllib.parse import parse_qs, unquote, urlsplit

from sqlalchemy import delete, or_, select, update
from sqlalchemy.orm import Session

from crm_core.db import dialect_insert, utcnow
from crm_core.errors import FieldError, InvalidInput
from crm_core.ingestion.models import Source
from crm_core.mailboxes.models import Mailbox, MailboxSecurity

DEFAULT_PORTS = {"imap": 143, "imaps": 993}
SOURCE_PREFIX = "mailbox-"
# Source names are 80 characters at most, and carry the prefix.
MAX_NAME_LENGTH = 80 - len(SOURCE_PREFIX)
TRUE_WORDS = frozenset({"1", "true", "yes", "on"})
FALSE_WORDS = frozenset({"0", "false", "no", "off"})


@dataclass(frozen=True)
class MailboxAddress:
    """Where a mailbox is and how to log in: what an ``imap://`` URL says."""

    host: str
    port: int
    security: MailboxSecurity
    username: str
    password: str = field(repr=False)
    folder: str = "INBOX"


@dataclass(frozen=True)
class MailboxView:
    """A mailbox as listings show it: everything but the password."""

    id: int
    name: str
    source_id: int
    url: str
    host: str
    port: int
    security: str
    username: str
    folder: str
    move_to: str | None
    enabled: bool
    uidvalidity: int | None
    last_uid: int
    last_polled_at: dt.datetime | None
    last_error: str | None
    lease_owner: str | None
    lease_expires_at: dt.datetime | None


def _bad_url(msg: str) -> InvalidInput:
    return InvalidInput([FieldError(("url",), msg)])


def _starttls_requested(query: str) -> bool:
    values = parse_qs(query, keep_blank_values=True).get("starttls", [])
    if not values:
        return False
    word = values[-1].strip().lower()
    if word in TRUE_WORDS or word == "":
        return True
    if word in FALSE_WORDS:
        return False
    raise _bad_url("starttls must be 1 or 0")


def parse_mailbox_url(url: str, *, password: str | None = None) -> MailboxAddress:
    """Read ``imap[s]://USER[:PASS]@HOST[:PORT][/FOLDER][?starttls=1]``; ``InvalidInput`` if wrong.

    User and password are percent-decoded (write ``@`` as ``%40``); the port
    defaults to 143 (``imap``) or 993 (``imaps``), the folder to INBOX. The
    password is in the URL or in ``password``, not both: a URL given on a
    command line is visible to every user of the machine (``ps``) and kept in
    the shell's history, so callers should prefer ``password``.
    """
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        raise _bad_url("must start with imap:// or imaps://")
    try:
        port = parts.port or DEFAULT_PORTS[scheme]
    except ValueError:
        raise _bad_url("the port must be a number from 1 to 65535") from None
    if not parts.hostname:
        raise _bad_url("a host is required")
    if not parts.username or (parts.password is None and password is None):
        raise _bad_url("a user and a password are required (imap://USER:PASS@HOST/)")
    if parts.password is not None and password is not None:
        raise InvalidInput(
            [FieldError(("password",), "is given both in the URL and apart; give it once")]
        )
    starttls = _starttls_requested(parts.query)
    if starttls and scheme == "imaps":
        raise _bad_url("starttls applies to imap://, not imaps://, which is TLS from the start")
    security = MailboxSecurity.TLS if scheme == "imaps" else MailboxSecurity.PLAIN
    folder = unquote(parts.path.lstrip("/")) or "INBOX"
    return MailboxAddress(
        host=parts.hostname,
        port=port,
        security=MailboxSecurity.STARTTLS if starttls else security,
        username=unquote(parts.username),
        password=unquote(parts.password) if parts.password is not None else password or "",
        folder=folder,
    )


def display_url(mailbox: Mailbox) -> str:
    """The mailbox's URL without its password, for listings and logs."""
    scheme = "imaps" if mailbox.security == MailboxSecurity.TLS else "imap"
    query = "?starttls=1" if mailbox.security == MailboxSecurity.STARTTLS else ""
    return f"{scheme}://{mailbox.username}@{mailbox.host}:{mailbox.port}/{mailbox.folder}{query}"


def view_of(mailbox: Mailbox) -> MailboxView:
    """The password-free view of ``mailbox``."""
    return MailboxView(
        id=mailbox.id,
        name=mailbox.name,
        source_id=mailbox.source_id,
        url=display_url(mailbox),
        host=mailbox.host,
        port=mailbox.port,
        security=mailbox.security,
        username=mailbox.username,
        folder=mailbox.folder,
        move_to=mailbox.move_to,
        enabled=mailbox.enabled,
        uidvalidity=mailbox.uidvalidity,
        last_uid=mailbox.last_uid,
        last_polled_at=mailbox.last_polled_at,
        last_error=mailbox.last_error,
        lease_owner=mailbox.lease_owner,
        lease_expires_at=mailbox.lease_expires_at,
    )


def _check_name(name: str) -> str:
    name = name.strip()
    if not name or len(name) > MAX_NAME_LENGTH:
        raise InvalidInput([FieldError(("name",), f"must be 1 to {MAX_NAME_LENGTH} characters")])
    return name


def source_name_of(mailbox_name: str) -> str:
    """The name of the source a mailbox's messages are stored under."""
    return SOURCE_PREFIX + mailbox_name


def _mailbox_source_id(session: Session, *, mailbox_name: str) -> int:
    """The id of the mailbox's source, created if missing (kept when a mailbox is re-added)."""
    name = source_name_of(mailbox_name)
    session.execute(
        dialect_insert(session, Source)
        .values(name=name, description=f"IMAP mailbox {mailbox_name}", enabled=True)
        .on_conflict_do_nothing(index_elements=[Source.name])
    )
    source_id = session.scalar(select(Source.id).where(Source.name == name))
    assert source_id is not None
    return source_id


def add_mailbox(
    session: Session,
    *,
    name: str,
    url: str,
    move_to: str | None = None,
    password: str | None = None,
) -> MailboxView:
    """Add a mailbox to poll; ``InvalidInput`` for a bad URL or a name already in use.

    The password is in ``url`` or in ``password`` (see ``parse_mailbox_url``);
    it is stored encrypted.
    """
    name = _check_name(name)
    address = parse_mailbox_url(url, password=password)
    move_to = (move_to or "").strip() or None
    if move_to == address.folder:
        raise InvalidInput([FieldError(("move_to",), "must differ from the folder polled")])
    source_id = _mailbox_source_id(session, mailbox_name=name)
    now = utcnow()
    # ON CONFLICT, so two concurrent adds of one name give one row and one clean error.
    mailbox_id = session.execute(
        dialect_insert(session, Mailbox)
        .values(
            name=name,
            source_id=source_id,
            host=address.host,
            port=address.port,
            security=address.security,
            username=address.username,
            password=address.password,
            folder=address.folder,
            move_to=move_to,
            last_uid=0,
            enabled=True,
            created_at=now,
            updated_at=now,
        )
        .on_conflict_do_nothing(index_elements=[Mailbox.name])
        .returning(Mailbox.id)
    ).scalar()
    if mailbox_id is None:
        raise InvalidInput([FieldError(("name",), f"a mailbox named {name!r} already exists")])
    mailbox = session.get(Mailbox, mailbox_id)
    assert mailbox is not None
    return view_of(mailbox)


def get_mailbox(session: Session, *, name: str) -> Mailbox | None:
    """The mailbox called ``name``, with its password (for connecting), or None."""
    return session.scalar(select(Mailbox).where(Mailbox.name == name.strip()))


def list_mailboxes(session: Session) -> list[MailboxView]:
    """Every mailbox, by name, without passwords."""
    return [view_of(m) for m in session.scalars(select(Mailbox).order_by(Mailbox.name))]


def remove_mailbox(session: Session, *, name: str) -> bool:
    """Remove the mailbox called ``name``; False when there was none."""
    result = session.execute(
        delete(Mailbox).where(Mailbox.name == name.strip()).returning(Mailbox.id)
    )
    return result.scalar() is not None


def enabled_mailbox_ids(session: Session) -> list[int]:
    """The ids of the mailboxes beat should poll."""
    return list(session.scalars(select(Mailbox.id).where(Mailbox.enabled).order_by(Mailbox.id)))


def acquire_lease(session: Session, *, mailbox_id: int, owner: str, ttl: dt.timedelta) -> bool:
    """Make ``owner`` the only poller of the mailbox for ``ttl``; False if someone else is.

    One conditional UPDATE: on PostgreSQL the loser of a race waits for the
    winner's row lock, re-reads the row and no longer matches; on SQLite the
    write lock serializes the two. The holder may call it again to renew.
    The caller commits at once, so others see the lease.
    """
    now = utcnow()
    result = session.execute(
        update(Mailbox)
        .where(
            Mailbox.id == mailbox_id,
            Mailbox.enabled,
            or_(
                Mailbox.lease_owner.is_(None),
                Mailbox.lease_owner == owner,
                Mailbox.lease_expires_at.is_(None),
                Mailbox.lease_expires_at <= now,
            ),
        )
        .values(lease_owner=owner, lease_expires_at=now + ttl)
        .returning(Mailbox.id)
    )
    return result.scalar() is not None


def release_lease(session: Session, *, mailbox_id: int, owner: str) -> bool:
    """Give up ``owner``'s lease; False when it held none (it expired and was taken)."""
    result = session.execute(
        update(Mailbox)
        .where(Mailbox.id == mailbox_id, Mailbox.lease_owner == owner)
        .values(lease_owner=None, lease_expires_at=None)
        .returning(Mailbox.id)
    )
    return result.scalar() is not None


def record_poll(
    session: Session,
    *,
    mailbox_id: int,
    owner: str,
    uidvalidity: int | None,
    last_uid: int,
    error: str | None,
) -> bool:
    """Save how far a poll got (and its error, or None) if ``owner`` still holds the lease.

    False means the lease was lost to another poller, whose progress wins.
    """
    result = session.execute(
        update(Mailbox)
        .where(Mailbox.id == mailbox_id, Mailbox.lease_owner == owner)
        .values(
            uidvalidity=uidvalidity,
            last_uid=last_uid,
            last_error=error,
            last_polled_at=utcnow(),
        )
        .returning(Mailbox.id)
    )
    return result.scalar() is not None
