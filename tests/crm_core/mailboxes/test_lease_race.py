"""Two pollers asking for one mailbox's lease at the same moment: exactly one gets it."""

from __future__ import annotations

import datetime as dt
import threading
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import Engine, text

from crm_core.db import make_session_factory
from crm_core.mailboxes.services import acquire_lease, add_mailbox
from tests.processes import wait_until

MINUTE = dt.timedelta(minutes=1)


def _new_mailbox(engine: Engine) -> int:
    with make_session_factory(engine).begin() as session:
        return add_mailbox(session, name="support", url="imap://u:p@host/").id


def test_of_two_simultaneous_callers_one_wins(committed_db: Engine) -> None:
    mailbox_id = _new_mailbox(committed_db)
    sessions = make_session_factory(committed_db)
    start = threading.Barrier(2)

    def ask(owner: str) -> bool:
        start.wait()
        with sessions.begin() as session:
            return acquire_lease(session, mailbox_id=mailbox_id, owner=owner, ttl=MINUTE)

    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(ask, ["a", "b"]))
    assert sorted(results) == [False, True]


def test_the_loser_waits_for_the_winner_and_then_sees_its_lease(
    postgres_committed: Engine,
) -> None:
    """PostgreSQL: B's UPDATE waits for A's row lock, then re-reads the row: no match.

    (SQLite serializes whole write transactions, so there is no row lock to wait on.)
    """
    mailbox_id = _new_mailbox(postgres_committed)
    sessions = make_session_factory(postgres_committed)
    with sessions() as first, sessions() as second, sessions() as probe:
        assert acquire_lease(first, mailbox_id=mailbox_id, owner="a", ttl=MINUTE)  # not committed
        second_pid = second.scalar(text("SELECT pg_backend_pid()"))
        with ThreadPoolExecutor(1) as pool:
            future = pool.submit(
                acquire_lease, second, mailbox_id=mailbox_id, owner="b", ttl=MINUTE
            )
            waiting = text("SELECT wait_event_type FROM pg_stat_activity WHERE pid = :pid")
            wait_until(
                lambda: probe.scalar(waiting, {"pid": second_pid}) == "Lock",
                timeout=30,
                what="the second caller to wait for the first one's row lock",
            )
            first.commit()
            assert future.result(timeout=30) is False
        second.commit()
