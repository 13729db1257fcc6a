"""The IMAP server goes away in the middle of a poll: nothing is lost, nothing is stored twice.

The poll runs as the platform's poller will: take the mailbox's lease, poll with a
store callback that commits each message to the real inbox table (deduping by
Message-ID), then record how far it got, whether the poll ended well or not.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import pytest
from sqlalchemy import Engine

from crm_core.db import make_session_factory
from crm_core.mailboxes.imap import FetchedMessage, MailboxError, PollResult, poll
from crm_core.mailboxes.services import (
    acquire_lease,
    add_mailbox,
    get_mailbox,
    record_poll,
    release_lease,
)
from tests.imap_inbox import inbox_store, stored_count, stored_keys
from tests.imap_server import (
    DovecotServer,
    imap_server_fixture,  # noqa: F401 - the fixture imap_server
    support_request,
)

pytestmark = pytest.mark.faults("IMAP server restarted during a poll")
OWNER = "poller-1"


def poll_once(engine: Engine, store: Callable[[FetchedMessage], bool]) -> PollResult:
    """One leased poll of the mailbox ``support``; its progress is saved even when it fails."""
    sessions = make_session_factory(engine)
    with sessions.begin() as session:
        mailbox = get_mailbox(session, name="support")
        assert mailbox is not None
        ttl = dt.timedelta(minutes=5)
        assert acquire_lease(session, mailbox_id=mailbox.id, owner=OWNER, ttl=ttl)
    # The session is closed: ``mailbox`` is a detached copy that the poll updates.
    error: str | None = None
    try:
        return poll(mailbox, store=store, batch_size=5)
    except MailboxError as exc:
        error = str(exc)
        raise
    finally:
        with sessions.begin() as session:
            record_poll(
                session,
                mailbox_id=mailbox.id,
                owner=OWNER,
                uidvalidity=mailbox.uidvalidity,
                last_uid=mailbox.last_uid,
                error=error,
            )
            release_lease(session, mailbox_id=mailbox.id, owner=OWNER)


def saved_last_uid(engine: Engine) -> int:
    with make_session_factory(engine)() as session:
        mailbox = get_mailbox(session, name="support")
        assert mailbox is not None
        return mailbox.last_uid


@pytest.fixture
def support_mailbox(imap_server: DovecotServer, committed_db: Engine) -> DovecotServer:
    with make_session_factory(committed_db).begin() as session:
        add_mailbox(session, name="support", url=imap_server.url())
    return imap_server


@pytest.mark.parametrize("how", ["stop", "crash"])
def test_server_stopped_mid_poll_then_started_again(
    support_mailbox: DovecotServer, committed_db: Engine, how: str
) -> None:
    server = support_mailbox
    server.append(support_request(n) for n in range(1, 31))
    store = inbox_store(committed_db)
    calls = 0

    def store_then_stop_the_server(message: FetchedMessage) -> bool:
        nonlocal calls
        calls += 1
        stored = store(message)
        if calls == 12:
            getattr(server, how)()
        return stored

    with pytest.raises(MailboxError, match="connection lost"):
        poll_once(committed_db, store_then_stop_the_server)
    # Messages 11-15 were fetched in one round and stored, but never flagged.
    assert stored_count(committed_db) == 15
    interrupted_at = saved_last_uid(committed_db)
    assert interrupted_at == 10

    with pytest.raises(MailboxError, match="cannot connect"):
        poll_once(committed_db, store)
    server.start()
    result = poll_once(committed_db, store)

    assert (result.stored, result.duplicates) == (15, 5)
    assert stored_keys(committed_db) == [f"request-{n}@customer.example" for n in range(1, 31)]
    assert saved_last_uid(committed_db) == 30
    assert all("\\Seen" in flags for flags in server.flags().values())


def test_a_poller_killed_after_a_commit_leaves_no_double(
    support_mailbox: DovecotServer, committed_db: Engine
) -> None:
    server = support_mailbox
    server.append(support_request(n) for n in range(1, 9))
    store = inbox_store(committed_db)

    def store_then_die(message: FetchedMessage) -> bool:
        stored = store(message)
        if message.uid == 7:
            raise SystemExit("worker killed")
        return stored

    with pytest.raises(SystemExit):
        poll_once(committed_db, store_then_die)
    assert saved_last_uid(committed_db) == 5
    result = poll_once(committed_db, store)
    assert (result.stored, result.duplicates) == (1, 2)
    assert stored_count(committed_db) == 8
    assert all("\\Seen" in flags for flags in server.flags().values())
