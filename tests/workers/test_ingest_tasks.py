"""process_events and sweep_inbox, run in-process against the test database."""

from __future__ import annotations

import contextlib
import json
import logging
import uuid
from collections.abc import Iterator

import pytest
from celery.exceptions import SoftTimeLimitExceeded
from sqlalchemy import Engine, event, func, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from crm_core.customers.models import Contact
from crm_core.db import make_session_factory
from crm_core.ingestion import handlers
from crm_core.ingestion.batching import batchable
from crm_core.ingestion.errors import PermanentError
from crm_core.ingestion.models import EventStatus, InboxEvent, Source
from crm_core.models import Product
from workers import db as worker_db
from workers import publish, tasks
from workers.app import celery_app


@pytest.fixture
def worker_session(committed_db: Engine) -> Iterator[Session]:
    """The worker's unit of work bound to the test database; a session to look with."""
    factory = make_session_factory(committed_db)
    with worker_db.injected(sessions=factory), factory() as session:
        yield session


@pytest.fixture
def published(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, float | None]]:
    """What the tasks published, instead of the in-memory broker."""
    sent: list[tuple[int, float | None]] = []

    def record(event_ids: list[int], *, countdown: float | None = None) -> int:
        sent.extend((event_id, countdown) for event_id in event_ids)
        return len(event_ids)

    monkeypatch.setattr(tasks, "enqueue_events", record)
    return sent


@pytest.fixture
def lead_handler(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """A leads handler that creates a product row; fails on demand."""
    failures: list[Exception] = []
    seen: list[int] = []

    def handle(
        session: Session, event: InboxEvent, _lead: object, _policy: object
    ) -> list[tuple[str, int]]:
        seen.append(event.id)
        if failures:
            raise failures.pop(0)
        product = Product(sku=f"LEAD-{event.id}", name="lead", currency="EUR")
        session.add(product)
        session.flush()
        return [("product", product.id)]

    handle.failures = failures  # type: ignore[attr-defined]
    entry = handlers.KindHandler(parse=handlers.parse_lead, handle=handle)
    monkeypatch.setitem(handlers.HANDLERS, "leads", entry)
    return seen


def _event(session: Session, *, kind: str = "leads", body: bytes | None = None) -> int:
    source = Source(name=f"src-{kind}-{uuid.uuid4().hex[:12]}")
    session.add(source)
    session.flush()
    event = InboxEvent(
        source_id=source.id,
        kind=kind,
        webhook_id="msg_1",
        content_type="application/json",
        body=body or b'{"email": "lead@example.com"}',
    )
    session.add(event)
    session.commit()
    return event.id


def _reloaded(session: Session, event_id: int) -> InboxEvent:
    session.expire_all()
    event = session.get(InboxEvent, event_id)
    assert event is not None
    _ = event.entities
    # End the read: on SQLite an open transaction holds the write lock the worker needs.
    session.commit()
    return event


def test_an_event_is_processed_once_with_its_entities(
    worker_session: Session, lead_handler: list[int]
) -> None:
    event_id = _event(worker_session)
    assert tasks.process_events([event_id]) == {"processed": 1}
    assert tasks.process_events([event_id]) == {"skipped": 1}
    event = _reloaded(worker_session, event_id)
    assert (event.status, event.attempts) == (EventStatus.PROCESSED, 1)
    [link] = event.entities
    assert link.entity_type == "product"
    assert lead_handler == [event_id]
    assert worker_session.get(Product, link.entity_id) is not None


def test_process_events_handles_each_event_on_its_own(
    worker_session: Session, lead_handler: list[int], published: list[tuple[int, float | None]]
) -> None:
    first = _event(worker_session, body=b'{"email": "a@example.com"}')
    second = _event(worker_session, body=b'{"email": "b@example.com"}')
    third = _event(worker_session, body=b'{"email": "c@example.com"}')
    lost = OperationalError("SELECT 1", {}, ConnectionResetError("db blinked"))
    handlers.HANDLERS["leads"].handle.failures.append(lost)  # type: ignore[attr-defined]

    outcomes = tasks.process_events([first, second, third, second])

    # The first event's transient failure is its own: retried later, the others processed.
    assert outcomes == {"retry": 1, "processed": 2, "skipped": 1}
    assert [event_id for event_id, _ in published] == [first]
    assert _reloaded(worker_session, second).status == EventStatus.PROCESSED
    assert _reloaded(worker_session, first).status == EventStatus.RECEIVED


def test_process_events_refuses_what_is_not_a_list_of_ids(worker_session: Session) -> None:
    assert tasks.process_events("1,2") == {}  # type: ignore[arg-type]
    assert tasks.process_events([1, "2"]) == {}  # type: ignore[list-item]
    assert tasks.process_events([True]) == {}


def test_an_event_without_handler_fails_with_the_reason(
    worker_session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delitem(handlers.HANDLERS, "leads")
    event_id = _event(worker_session)
    assert tasks.process_events([event_id]) == {"failed": 1}
    event = _reloaded(worker_session, event_id)
    assert event.status == EventStatus.FAILED
    assert event.error == "no handler for kind 'leads'"


def test_a_payload_that_no_longer_validates_is_invalid(worker_session: Session) -> None:
    event_id = _event(worker_session, body=b'{"email": 5}')
    assert tasks.process_events([event_id]) == {"invalid": 1}
    assert _reloaded(worker_session, event_id).errors[0]["field"] == "email"


def test_transient_errors_retry_with_backoff_then_the_event_is_dead(
    worker_session: Session,
    lead_handler: list[int],
    published: list[tuple[int, float | None]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(celery_app.conf, "crm_max_attempts", 3)
    failures = handlers.HANDLERS["leads"].handle.failures  # type: ignore[attr-defined]
    lost = OperationalError("INSERT", {}, Exception("server closed the connection"))
    failures.extend([lost, lost, lost])
    event_id = _event(worker_session)
    for attempt in (1, 2):
        assert tasks.process_events([event_id]) == {"retry": 1}
        event = _reloaded(worker_session, event_id)
        assert (event.status, event.attempts) == (EventStatus.RECEIVED, attempt)
        assert event.next_attempt_at is not None
        assert "OperationalError" in (event.error or "")
    assert [e for e, _ in published] == [event_id, event_id]
    assert all(countdown and countdown > 0 for _, countdown in published)
    assert tasks.process_events([event_id]) == {"dead": 1}
    assert _reloaded(worker_session, event_id).status == EventStatus.DEAD
    assert worker_session.scalars(select(Product)).all() == []


def test_the_soft_time_limit_is_a_transient_failure(
    worker_session: Session, lead_handler: list[int], published: list[tuple[int, float | None]]
) -> None:
    handlers.HANDLERS["leads"].handle.failures.append(SoftTimeLimitExceeded())  # type: ignore[attr-defined]
    event_id = _event(worker_session)
    assert tasks.process_events([event_id]) == {"retry": 1}
    event = _reloaded(worker_session, event_id)
    assert (event.status, event.attempts) == (EventStatus.RECEIVED, 1)
    assert "soft time limit" in (event.error or "")
    assert [e for e, _ in published] == [event_id]


def test_an_event_whose_worker_died_at_every_attempt_is_not_claimed_again(
    worker_session: Session,
    lead_handler: list[int],
    published: list[tuple[int, float | None]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(celery_app.conf, "crm_max_attempts", 2)
    event_id = _event(worker_session)
    for attempt in (1, 2):  # each claim is released by the sweeper, as after a crash
        event = _reloaded(worker_session, event_id)
        event.attempts, event.error = attempt, f"worker died while processing (attempt {attempt})"
        worker_session.commit()
    tasks.process_events([event_id])  # the claim finds it spent: nothing runs
    assert lead_handler == []
    event = _reloaded(worker_session, event_id)
    assert (event.status, event.attempts) == (EventStatus.DEAD, 2)
    assert event.error == "gave up after 2 attempts: worker died while processing (attempt 2)"


def test_a_permanent_error_fails_without_retry(
    worker_session: Session, lead_handler: list[int], published: list
) -> None:
    handlers.HANDLERS["leads"].handle.failures.append(PermanentError("no such pipeline"))  # type: ignore[attr-defined]
    event_id = _event(worker_session)
    assert tasks.process_events([event_id]) == {"failed": 1}
    assert _reloaded(worker_session, event_id).error == "no such pipeline"
    assert published == []


def test_a_bug_in_a_handler_fails_the_event_and_is_logged(
    worker_session: Session, lead_handler: list[int], caplog: pytest.LogCaptureFixture
) -> None:
    handlers.HANDLERS["leads"].handle.failures.append(KeyError("oops"))  # type: ignore[attr-defined]
    event_id = _event(worker_session)
    assert tasks.process_events([event_id]) == {"failed": 1}
    assert "KeyError" in (_reloaded(worker_session, event_id).error or "")
    assert f"event {event_id} failed" in caplog.text


def test_no_log_record_carries_the_payload(
    worker_session: Session, caplog: pytest.LogCaptureFixture
) -> None:
    """A handler bug on a real write: the driver's error quotes the row, the log must not."""
    marker = "ann.private@customer.example"

    def careless(
        session: Session, event: InboxEvent, _lead: object, _policy: object
    ) -> list[tuple[str, int]]:
        email = json.loads(event.body)["email"]
        session.add(Product(sku=None, name=email, currency="EUR"))  # NOT NULL: a bug
        session.flush()
        return []

    entry = handlers.KindHandler(parse=handlers.parse_lead, handle=careless)
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(handlers.HANDLERS, "leads", entry)
        caplog.set_level(logging.DEBUG)
        event_id = _event(worker_session, body=json.dumps({"email": marker}).encode())
        assert tasks.process_events([event_id]) == {"failed": 1}
    assert f"event {event_id} failed" in caplog.text
    assert "IntegrityError" in caplog.text
    assert "careless" in caplog.text  # where it failed is there
    assert marker not in caplog.text
    assert marker not in (_reloaded(worker_session, event_id).error or "")


def test_the_sweeper_publishes_waiting_events(
    worker_session: Session, published: list, monkeypatch: pytest.MonkeyPatch
) -> None:
    from crm_core.config import get_settings

    monkeypatch.setattr(get_settings(), "sweep_grace_seconds", 0.0)
    event_id = _event(worker_session)
    assert tasks.sweep_inbox() == 1
    assert published == [(event_id, None)]
    assert tasks.sweep_inbox() == 0


def test_publishing_to_a_dead_broker_publishes_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_a: object, **_k: object) -> None:
        raise ConnectionRefusedError("broker down")

    monkeypatch.setattr(publish.celery_app, "send_task", refuse)
    assert publish.enqueue_events([1]) == 0


def test_a_burst_is_published_as_few_messages_and_stops_at_a_failure(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sent: list[tuple[str, object, object]] = []

    def flaky(name: str, *, args: tuple[list[int]], producer: object, **_k: object) -> None:
        if 7 in args[0]:
            raise ConnectionRefusedError("broker down")
        sent.append((name, args, producer))

    monkeypatch.setattr(publish.celery_app, "send_task", flaky)
    assert publish.enqueue_events([1, 2, 3, 4, 5], per_message=2) == 5
    assert [(name, args) for name, args, _ in sent] == [
        ("crm.ingest.process_events", ([1, 2],)),
        ("crm.ingest.process_events", ([3, 4],)),
        ("crm.ingest.process_events", ([5],)),
    ]
    # One producer for the whole burst.
    assert len({id(producer) for _, _, producer in sent}) == 1
    sent.clear()
    assert publish.enqueue_events([5, 6, 7, 8], per_message=2) == 2


def _statements(engine: Engine) -> Iterator[list[str]]:
    seen: list[str] = []

    def record(_conn: object, _cursor: object, statement: str, *_rest: object) -> None:
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


def test_a_burst_of_leads_is_captured_as_one_batch(
    worker_session: Session, committed_db: Engine
) -> None:
    leads = [
        _event(worker_session, body=f'{{"email": "p{n}@acme.example"}}'.encode()) for n in range(20)
    ]
    bad = _event(worker_session, body=b'{"email": "not an address"}')
    order = _event(
        worker_session,
        kind="orders",
        body=b'{"order_number": "A-1", "email": "p0@acme.example", "currency": "EUR", '
        b'"lines": [{"sku": "S-1", "name": "Thing", "quantity": 1, "unit_price": "5.00"}]}',
    )
    assert batchable("leads")
    with contextlib.contextmanager(_statements)(committed_db) as statements:
        outcomes = tasks.process_events([*leads, bad, order])
    assert outcomes == {"processed": 21, "invalid": 1}
    for event_id in leads:
        event = _reloaded(worker_session, event_id)
        assert event.status == EventStatus.PROCESSED
        assert {link.entity_type for link in event.entities} == {"customer", "contact", "activity"}
    assert _reloaded(worker_session, bad).status == EventStatus.INVALID
    assert _reloaded(worker_session, bad).errors[0]["field"] == "email"
    assert _reloaded(worker_session, order).status == EventStatus.PROCESSED
    contacts = worker_session.scalars(select(Contact).order_by(Contact.id)).all()
    worker_session.commit()
    assert [c.email for c in contacts] == [f"p{n}@acme.example" for n in range(20)]
    assert [c.is_primary for c in contacts] == [True] + [False] * 19
    if committed_db.dialect.name == "postgresql":
        # The twenty leads cost a fixed number of statements, not twenty times one lead's
        # (SQLite's driver gets one INSERT per new row).
        assert sum(s.startswith("INSERT INTO contacts") for s in statements) == 1
        # 13 for the claim and the twenty-one leads, 16 for the order on its own; each
        # includes the one read of the subscriptions their notifications are owed to.
        assert sum(s.startswith("SELECT subscriptions.") for s in statements) == 2
        assert len(statements) <= 32, "\n".join(s[:90] for s in statements)


def test_a_batch_that_fails_as_a_whole_goes_one_by_one(
    worker_session: Session, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def deadlocked(session: Session, *, kind: str, event_ids: list[int], policy: object) -> object:
        raise OperationalError("SELECT pg_advisory_xact_lock", {}, Exception("deadlock detected"))

    monkeypatch.setattr(tasks, "run_batch", deadlocked)
    leads = [
        _event(worker_session, body=f'{{"email": "q{n}@acme.example"}}'.encode()) for n in range(3)
    ]
    assert tasks.process_events(leads) == {"processed": 3}
    assert "a batch of 3 lead events goes one by one: OperationalError" in caplog.text
    assert all(_reloaded(worker_session, e).status == EventStatus.PROCESSED for e in leads)
    assert worker_session.scalar(select(func.count()).select_from(Contact)) == 3
