"""The event lifecycle: claim once, complete, fail, retry with backoff, die, replay, sweep."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy.orm import Session

from crm_core.config import get_settings
from crm_core.db import utcnow
from crm_core.ingestion import handlers, processing, single_event
from crm_core.ingestion.errors import InvalidInput, PermanentError, TransientError, is_transient
from crm_core.ingestion.models import EventStatus, InboxEvent
from crm_core.ingestion.policy import IngestPolicy
from crm_core.models import Product
from tests.factories import InboxEventFactory


def _reload(session: Session, event: InboxEvent) -> InboxEvent:
    session.expire_all()
    return session.get(InboxEvent, event.id)  # type: ignore[return-value]


def test_only_one_claim_wins(session: Session) -> None:
    event = InboxEventFactory()
    assert processing.claim_event(session, event_id=event.id)
    assert not processing.claim_event(session, event_id=event.id)
    event = _reload(session, event)
    assert (event.status, event.attempts) == (EventStatus.PROCESSING, 1)
    assert event.claimed_at is not None


def test_complete_links_the_entities(session: Session) -> None:
    event = InboxEventFactory()
    processing.claim_event(session, event_id=event.id)
    processing.complete_event(
        session, event_id=event.id, entities=[("customer", 7), ("contact", 9), ("customer", 7)]
    )
    event = _reload(session, event)
    assert event.status == EventStatus.PROCESSED
    assert event.processed_at is not None
    assert sorted((e.entity_type, e.entity_id) for e in event.entities) == [
        ("contact", 9),
        ("customer", 7),
    ]


def test_an_unclaimed_event_is_not_completed(session: Session) -> None:
    event = InboxEventFactory()
    processing.complete_event(session, event_id=event.id, entities=[])
    assert _reload(session, event).status == EventStatus.RECEIVED


def test_a_transient_failure_is_retried_later_then_dies(session: Session) -> None:
    event = InboxEventFactory()
    now = utcnow()
    processing.claim_event(session, event_id=event.id)
    delay = processing.schedule_retry(
        session, event_id=event.id, error="db down", max_attempts=2, backoff_max=60, now=now
    )
    assert delay is not None
    assert 0 < delay <= 60
    event = _reload(session, event)
    assert event.status == EventStatus.RECEIVED
    assert event.error == "db down"
    assert event.next_attempt_at == now + dt.timedelta(seconds=delay)
    processing.claim_event(session, event_id=event.id)
    assert (
        processing.schedule_retry(
            session, event_id=event.id, error="db down", max_attempts=2, backoff_max=60
        )
        is None
    )
    event = _reload(session, event)
    assert event.status == EventStatus.DEAD
    assert "after 2 attempts" in (event.error or "")


def test_replay_resets_finished_events_only(session: Session) -> None:
    event = InboxEventFactory(status=EventStatus.FAILED, attempts=3, error="boom")
    busy = InboxEventFactory(status=EventStatus.PROCESSING)
    assert processing.replayable_ids(session, status=EventStatus.FAILED) == [event.id]
    processing.replay_event(session, event_id=event.id)
    event = _reload(session, event)
    assert (event.status, event.attempts, event.error) == (EventStatus.RECEIVED, 0, None)
    with pytest.raises(processing.NotReplayable):
        processing.replay_event(session, event_id=busy.id)
    with pytest.raises(processing.EventNotFound):
        processing.replay_event(session, event_id=2**70)


def test_the_sweeper_finds_waiting_and_abandoned_events_once(session: Session) -> None:
    now = utcnow()
    fresh = InboxEventFactory(received_at=now)
    waiting = InboxEventFactory(received_at=now - dt.timedelta(seconds=30))
    retry_due = InboxEventFactory(next_attempt_at=now - dt.timedelta(seconds=1))
    retry_later = InboxEventFactory(next_attempt_at=now + dt.timedelta(minutes=5))
    abandoned = InboxEventFactory(
        status=EventStatus.PROCESSING, claimed_at=now - dt.timedelta(minutes=10)
    )
    busy = InboxEventFactory(status=EventStatus.PROCESSING, claimed_at=now)
    done = InboxEventFactory(status=EventStatus.PROCESSED, received_at=now - dt.timedelta(hours=1))
    sweep = {
        "received_grace": dt.timedelta(seconds=5),
        "claim_timeout": dt.timedelta(minutes=5),
        "republish_after": dt.timedelta(minutes=2),
    }
    due = processing.due_for_sweep(session, now=now, **sweep)
    assert set(due) == {waiting.id, retry_due.id, abandoned.id}
    assert processing.due_for_sweep(session, now=now + dt.timedelta(seconds=1), **sweep) == []
    later = processing.due_for_sweep(session, now=now + dt.timedelta(minutes=3), **sweep)
    assert set(later) >= {waiting.id, abandoned.id, fresh.id}
    assert not {retry_later.id, busy.id, done.id} & set(due)


SWEEP = {
    "received_grace": dt.timedelta(seconds=5),
    "claim_timeout": dt.timedelta(minutes=5),
    "republish_after": dt.timedelta(minutes=2),
}


def test_an_event_that_kills_every_worker_ends_dead(session: Session) -> None:
    """Out of memory or the hard time limit: no failure is ever recorded, only claims."""
    event = InboxEventFactory()
    now = utcnow()
    for attempt in (1, 2, 3):
        assert processing.claim_event(session, event_id=event.id, max_attempts=3, now=now)
        now += dt.timedelta(minutes=6)  # the worker died; its claim timed out
        assert processing.due_for_sweep(session, now=now, **SWEEP) == [event.id]
        event = _reload(session, event)
        assert (event.status, event.attempts) == (EventStatus.RECEIVED, attempt)
        assert event.error == f"worker died while processing (attempt {attempt})"
    assert not processing.claim_event(session, event_id=event.id, max_attempts=3, now=now)
    event = _reload(session, event)
    assert (event.status, event.attempts) == (EventStatus.DEAD, 3)
    assert event.error == "gave up after 3 attempts: worker died while processing (attempt 3)"
    later = now + dt.timedelta(hours=1)
    assert processing.due_for_sweep(session, now=later, **SWEEP) == []


def test_a_batch_claim_buries_only_the_exhausted_events(session: Session) -> None:
    # Left waiting with more claims than allowed (by a worker that died, or a lowered limit).
    exhausted = InboxEventFactory(attempts=9, error="worker died while processing (attempt 9)")
    fresh = InboxEventFactory(attempts=2)
    won = processing.claim_events(session, event_ids=[exhausted.id, fresh.id], max_attempts=8)
    assert list(won) == [fresh.id]
    exhausted, fresh = _reload(session, exhausted), _reload(session, fresh)
    assert (exhausted.status, exhausted.attempts) == (EventStatus.DEAD, 9)
    assert exhausted.error == "gave up after 9 attempts: worker died while processing (attempt 9)"
    assert (fresh.status, fresh.attempts) == (EventStatus.PROCESSING, 3)


@pytest.fixture
def product_handler(monkeypatch: pytest.MonkeyPatch) -> None:
    """A handler for leads that creates a real row, in the table for one test."""

    def handle(
        session: Session, event: InboxEvent, _lead: object, _policy: object
    ) -> list[tuple[str, int]]:
        product = Product(sku=f"SKU-{event.webhook_id}", name="from a lead", currency="EUR")
        session.add(product)
        session.flush()
        return [("product", product.id)]

    entry = handlers.KindHandler(parse=handlers.parse_lead, handle=handle)
    monkeypatch.setitem(handlers.HANDLERS, "leads", entry)


@pytest.mark.usefixtures("product_handler")
def test_run_event_calls_the_kinds_handler_and_marks_it_processed(session: Session) -> None:
    event = InboxEventFactory()
    processing.claim_event(session, event_id=event.id)
    [(_kind, product_id)] = single_event.run_event(
        session, event_id=event.id, policy=IngestPolicy.from_settings(get_settings())
    )
    event = _reload(session, event)
    assert event.status == EventStatus.PROCESSED
    assert [(e.entity_type, e.entity_id) for e in event.entities] == [("product", product_id)]
    assert session.get(Product, product_id) is not None


def test_an_event_without_a_handler_is_a_permanent_error(
    session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delitem(handlers.HANDLERS, "deals")
    body = b'{"external_id": "d", "email": "a@b.c", "name": "n"}'
    event = InboxEventFactory(kind="deals", body=body)
    with pytest.raises(PermanentError, match="no handler for kind 'deals'"):
        single_event.run_event(
            session, event_id=event.id, policy=IngestPolicy.from_settings(get_settings())
        )


def test_a_stored_payload_is_validated_again(session: Session) -> None:
    event = InboxEventFactory(body=b'{"email": 5}')
    with pytest.raises(InvalidInput) as caught:
        single_event.run_event(
            session, event_id=event.id, policy=IngestPolicy.from_settings(get_settings())
        )
    assert caught.value.errors[0].field == "email"


def test_transient_errors_are_told_apart() -> None:
    from sqlalchemy.exc import IntegrityError, OperationalError

    assert is_transient(OperationalError("SELECT 1", {}, Exception("server closed")))
    assert is_transient(TransientError("smtp down"))
    assert not is_transient(IntegrityError("INSERT", {}, Exception("not null violation")))
    assert not is_transient(KeyError("bug"))
