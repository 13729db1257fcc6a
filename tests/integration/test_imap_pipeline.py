"""A real mailbox, end to end: Dovecot → the poll task → the inbox → the e-mail pipeline.

The tasks run in-process (``poll_all``, ``poll``, ``process_events``) against a
private PostgreSQL database; what they publish is recorded instead of sent, and
the published events are then processed, as a worker would.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client import generate_latest
from sqlalchemy import Engine, func, select, update
from sqlalchemy.orm import Session

from crm_core import migrate
from crm_core.activities.models import Activity
from crm_core.config import get_settings
from crm_core.db import make_engine, make_session_factory
from crm_core.ingestion.models import EventStatus, InboxEvent
from crm_core.mailboxes.models import Mailbox
from crm_core.mailboxes.polling import PollLimits, poll_mailbox
from crm_core.mailboxes.services import acquire_lease, add_mailbox, get_mailbox, remove_mailbox
from crm_core.support.models import SupportCase
from tests.crm_core.ops.test_metrics import samples
from tests.imap_server import (
    DovecotServer,
    imap_server_fixture,  # noqa: F401 - the fixture imap_server
    support_request,
)
from tests.keyring import TEST_KEYRING
from tests.services import scratch_postgres_database
from workers import db as worker_db
from workers import mailbox_tasks, tasks

pytestmark = [pytest.mark.postgres]

FIXTURES = Path(__file__).parents[1] / "fixtures" / "imap"
REPLY = (FIXTURES / "support_reply.eml").read_bytes()
AUTO_REPLY = (FIXTURES / "auto_reply.eml").read_bytes()


@pytest.fixture
def engine(postgres_available: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[Engine]:
    """A private, migrated PostgreSQL database that the worker's unit of work writes to."""
    monkeypatch.setenv("CRM_SUPPORT_ADDRESSES", "support@acme.test")
    get_settings.cache_clear()
    with scratch_postgres_database("crm_imap_pipeline") as url:
        migrate.upgrade(url)
        engine = make_engine(url, keyring=TEST_KEYRING)
        try:
            with worker_db.injected(sessions=make_session_factory(engine)):
                yield engine
        finally:
            engine.dispose()
            monkeypatch.undo()
            get_settings.cache_clear()


@pytest.fixture
def published(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The event ids the poll published for processing (instead of the broker)."""
    sent: list[int] = []

    def record(event_ids: list[int], *, countdown: float | None = None) -> int:
        sent.extend(event_ids)
        return len(event_ids)

    monkeypatch.setattr(mailbox_tasks, "enqueue_events", record)
    return sent


@pytest.fixture
def mailbox_id(imap_server: DovecotServer, engine: Engine) -> int:
    with make_session_factory(engine).begin() as session:
        return add_mailbox(session, name="support", url=imap_server.url()).id


def poll_and_process(mailbox_id: int, published: list[int]) -> list[int]:
    """One poll, then every event it published processed; those events' ids."""
    start = len(published)
    mailbox_tasks.poll(mailbox_id)
    new = published[start:]
    for event_id in new:
        assert tasks.process_events([event_id]) == {EventStatus.PROCESSED: 1}
    return new


def decisions(session: Session) -> list[str]:
    events = session.scalars(select(InboxEvent).order_by(InboxEvent.id))
    return [(event.outcome or {}).get("decision", "") for event in events]


def test_new_requests_open_cases_replies_thread_copies_and_auto_replies_do_not(
    imap_server: DovecotServer, engine: Engine, mailbox_id: int, published: list[int]
) -> None:
    request = support_request(1)
    imap_server.append([request, REPLY, request, AUTO_REPLY])

    assert len(poll_and_process(mailbox_id, published)) == 4

    with Session(engine) as session:
        assert decisions(session) == ["new_case", "reply_to_case", "duplicate", "auto_generated"]
        (case,) = session.scalars(select(SupportCase)).all()
        assert case.root_message_id == "request-1@customer.example"
        mails = session.execute(
            select(Activity.message_id, Activity.support_case_id)
            .where(Activity.message_id.is_not(None))
            .order_by(Activity.id)
        ).all()
        assert [tuple(row) for row in mails] == [
            ("request-1@customer.example", case.id),
            ("request-1-followup@customer.example", case.id),
        ]
        mailbox = get_mailbox(session, name="support")
        assert mailbox is not None
        assert (mailbox.last_uid, mailbox.last_error, mailbox.lease_owner) == (4, None, None)
    assert all("\\Seen" in flags for flags in imap_server.flags().values())

    # Nothing new: a second poll stores and publishes nothing.
    assert poll_and_process(mailbox_id, published) == []


def test_after_a_uidvalidity_change_nothing_is_stored_twice(
    imap_server: DovecotServer, engine: Engine, mailbox_id: int, published: list[int]
) -> None:
    imap_server.append(support_request(n) for n in (1, 2))
    assert len(poll_and_process(mailbox_id, published)) == 2
    imap_server.set_uidvalidity(4242)
    imap_server.append([support_request(3)])

    assert len(poll_and_process(mailbox_id, published)) == 1
    with Session(engine) as session:
        assert session.scalar(select(func.count()).select_from(SupportCase)) == 3
        mailbox = get_mailbox(session, name="support")
        assert mailbox is not None
        assert (mailbox.uidvalidity, mailbox.last_uid) == (4242, 3)


def test_a_message_without_message_id_is_not_filed_twice_after_a_uidvalidity_change(
    imap_server: DovecotServer,
    engine: Engine,
    mailbox_id: int,
    published: list[int],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CRM_AUTO_ACK_ENABLED", "true")
    get_settings.cache_clear()
    no_id = b"".join(
        line for line in support_request(5).splitlines(keepends=True)
        if not line.lower().startswith(b"message-id:")
    )  # fmt: skip
    imap_server.append([no_id])
    assert len(poll_and_process(mailbox_id, published)) == 1
    imap_server.set_uidvalidity(4343)

    assert poll_and_process(mailbox_id, published) == []
    with Session(engine) as session:
        assert decisions(session) == ["new_case"]
        assert session.scalar(select(func.count()).select_from(SupportCase)) == 1
        acks = select(func.count()).select_from(Activity).where(Activity.type == "email_sent")
        assert session.scalar(acks) == 1


def test_a_failed_poll_records_a_one_line_error_without_the_password(
    imap_server: DovecotServer, engine: Engine, mailbox_id: int, published: list[int]
) -> None:
    imap_server.stop()
    assert mailbox_tasks.poll(mailbox_id).startswith("skipped or failed")
    with Session(engine) as session:
        mailbox = get_mailbox(session, name="support")
        assert mailbox is not None
        assert mailbox.last_error is not None
        assert "cannot connect" in mailbox.last_error
        assert imap_server.users["support"] not in mailbox.last_error
        assert mailbox.lease_owner is None
    assert published == []


def test_poll_all_publishes_a_poll_per_enabled_mailbox(
    imap_server: DovecotServer, engine: Engine, mailbox_id: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    polled: list[int] = []
    monkeypatch.setattr(mailbox_tasks.poll, "delay", polled.append)
    with make_session_factory(engine).begin() as session:
        other = add_mailbox(session, name="sales", url=imap_server.url()).id
    assert mailbox_tasks.poll_all() == 2
    assert polled == [mailbox_id, other]
    with make_session_factory(engine).begin() as session:
        remove_mailbox(session, name="sales")
    assert mailbox_tasks.poll_all() == 1


def test_a_mailbox_leased_to_another_poller_is_left_alone(
    imap_server: DovecotServer, engine: Engine, mailbox_id: int, published: list[int]
) -> None:
    imap_server.append([support_request(1)])
    with make_session_factory(engine).begin() as session:
        ttl = dt.timedelta(minutes=5)
        assert acquire_lease(session, mailbox_id=mailbox_id, owner="elsewhere", ttl=ttl)
    mailbox_tasks.poll(mailbox_id)
    assert published == []
    assert not any("\\Seen" in flags for flags in imap_server.flags().values())


def test_a_poller_that_loses_its_lease_stops_after_the_batch(
    imap_server: DovecotServer, engine: Engine, mailbox_id: int
) -> None:
    imap_server.append(support_request(n) for n in (1, 2, 3))
    sessions = make_session_factory(engine)
    stored: list[int] = []

    def publish_then_lose_the_lease(event_id: int) -> None:
        stored.append(event_id)
        # Another poller took over (say, this one stalled past its lease).
        with sessions.begin() as session:
            session.execute(update(Mailbox).values(lease_owner="thief"))

    result = poll_mailbox(
        sessions.begin,
        mailbox_id=mailbox_id,
        owner="me",
        publish=publish_then_lose_the_lease,
        limits=PollLimits(batch_size=1, lease_ttl=dt.timedelta(minutes=5)),
    )
    assert result is None
    assert len(stored) == 1
    with Session(engine) as session:
        mailbox = session.get(Mailbox, mailbox_id)
        assert mailbox is not None
        # The new holder's lease and progress are left as they are.
        assert (mailbox.lease_owner, mailbox.last_uid) == ("thief", 0)
    flags = imap_server.flags()
    assert ["\\Seen" in flags[uid] for uid in sorted(flags)] == [True, False, False]


def test_polls_and_messages_are_counted_for_prometheus(
    imap_server: DovecotServer, engine: Engine, mailbox_id: int, published: list[int]
) -> None:
    """``crm_imap_polls_total`` by outcome and ``crm_imap_messages_total`` by result, as the
    poll task reports them (no mailbox name or address in any label)."""
    before = samples(generate_latest())
    request = support_request(7)
    imap_server.append([request, REPLY, request])
    said = mailbox_tasks.poll(mailbox_id)
    imap_server.stop()
    assert mailbox_tasks.poll(mailbox_id).startswith("skipped or failed")
    after = samples(generate_latest())

    def delta(name: str, label: str, value: str) -> float:
        key = (name, ((label, value),))
        return after.get(key, 0.0) - before.get(key, 0.0)

    stored, duplicates = (int(n) for n in re.findall(r"\d+", said))
    assert stored == len(published) > 0
    assert stored + duplicates == 3
    assert delta("crm_imap_polls_total", "outcome", "read") == 1
    assert delta("crm_imap_polls_total", "outcome", "skipped") == 1
    assert delta("crm_imap_messages_total", "result", "stored") == stored
    assert delta("crm_imap_messages_total", "result", "duplicate") == duplicates
    labels = {labels for name, labels in after if name.startswith("crm_imap_")}
    assert all(key in ("outcome", "result") for pairs in labels for key, _ in pairs)
