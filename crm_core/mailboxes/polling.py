"""One leased poll of one mailbox: each message stored in its own short transaction.

A poll spans many transactions (the lease, one per stored message, the progress),
so the caller hands in ``transaction``, a factory of units of work that commit
when their block ends (the worker's ``unit_of_work``); the services called
inside never commit themselves. ``publish`` is called with each new event's id
only after the transaction that stored it committed.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field

from sqlalchemy.orm import Session

from crm_core.errors import error_line
from crm_core.mail.parsed import MailLimits
from crm_core.mailboxes import imap
from crm_core.mailboxes.imap import FetchedMessage, MailboxError, PollResult
from crm_core.mailboxes.ingest import store_message
from crm_core.mailboxes.models import Mailbox
from crm_core.mailboxes.services import acquire_lease, record_poll, release_lease

log = logging.getLogger(__name__)

UnitOfWork = Callable[[], AbstractContextManager[Session]]
Publish = Callable[[int], object]


@dataclass(frozen=True)
class PollLimits:
    """How a poll reads: FETCH batch size, size cap, messages per poll, timeouts, lease."""

    batch_size: int = 200
    max_bytes: int = 25 * 1024 * 1024
    # Messages per poll; the rest wait for the next one (``PollResult.more``).
    limit: int | None = None
    timeout: float = imap.DEFAULT_TIMEOUT
    lease_ttl: dt.timedelta = dt.timedelta(minutes=5)
    # MIME parts and depth a message may have; more is stored ``invalid``.
    mail: MailLimits = field(default_factory=MailLimits)


def _take(
    transaction: UnitOfWork, mailbox_id: int, owner: str, ttl: dt.timedelta
) -> Mailbox | None:
    with transaction() as session:
        if not acquire_lease(session, mailbox_id=mailbox_id, owner=owner, ttl=ttl):
            return None
        mailbox = session.get(Mailbox, mailbox_id)
        assert mailbox is not None
        # Used after the session ends, as the reader's detached, updatable copy.
        session.expunge(mailbox)
        return mailbox


def _error_text(exc: BaseException, mailbox: Mailbox) -> str:
    """One line about a failure, with the mailbox's password masked wherever it appears."""
    if isinstance(exc, MailboxError):
        return str(exc)
    text = error_line(exc)
    return text.replace(mailbox.password, "***") if mailbox.password else text


def poll_mailbox(
    transaction: UnitOfWork,
    *,
    mailbox_id: int,
    owner: str,
    publish: Publish,
    limits: PollLimits,
) -> PollResult | None:
    """Poll the mailbox as ``owner`` if nobody else is polling it; None if someone is.

    Progress (UIDVALIDITY, last UID) is saved after every batch and at the end,
    together with the error, if any, in ``mailboxes.last_error``; the lease is
    released whatever happens. IMAP failures are recorded and return None;
    anything else is recorded and raised.
    """
    mailbox = _take(transaction, mailbox_id, owner, limits.lease_ttl)
    if mailbox is None:
        return None
    error: str | None = None
    try:
        return _run(transaction, mailbox, owner, publish, limits)
    except MailboxError as exc:
        error = str(exc)
        log.warning("mailbox %s: %s", mailbox.name, error)
        return None
    except BaseException as exc:
        error = _error_text(exc, mailbox)
        raise
    finally:
        with transaction() as session:
            _save(session, mailbox, owner, error)
            release_lease(session, mailbox_id=mailbox.id, owner=owner)


def _save(session: Session, mailbox: Mailbox, owner: str, error: str | None) -> bool:
    return record_poll(
        session,
        mailbox_id=mailbox.id,
        owner=owner,
        uidvalidity=mailbox.uidvalidity,
        last_uid=mailbox.last_uid,
        error=error,
    )


def _run(
    transaction: UnitOfWork, mailbox: Mailbox, owner: str, publish: Publish, limits: PollLimits
) -> PollResult:
    def store(fetched: FetchedMessage) -> bool:
        with transaction() as session:
            event_id = store_message(session, mailbox=mailbox, fetched=fetched, limits=limits.mail)
        # Published only now that the event is committed; the sweeper covers a failure.
        if event_id is not None:
            publish(event_id)
        return event_id is not None

    def after_batch(_result: PollResult) -> None:
        # Renew the lease and save progress; a lost lease stops this poll.
        with transaction() as session:
            kept = acquire_lease(
                session, mailbox_id=mailbox.id, owner=owner, ttl=limits.lease_ttl
            ) and _save(session, mailbox, owner, None)
        if not kept:
            raise MailboxError(f"mailbox {mailbox.name}: the poll lease was lost; stopping")

    return imap.poll(
        mailbox,
        store=store,
        batch_size=limits.batch_size,
        max_bytes=limits.max_bytes,
        limit=limits.limit,
        after_batch=after_batch,
        timeout=limits.timeout,
    )
