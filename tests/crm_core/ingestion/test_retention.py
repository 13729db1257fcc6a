"""Retention drops the body of finished events past the window, keeps the rest, and says so."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy.orm import Session

from crm_core.ingestion import retention
from crm_core.ingestion.models import EventStatus, InboxEvent
from crm_core.ingestion.processing import NotReplayable, replay_event, replayable_ids
from crm_core.readapi.events import event_document
from tests.factories import InboxEventFactory, SourceFactory

NOW = dt.datetime(2026, 12, 3, 12, 0, tzinfo=dt.UTC)
POLICY = retention.RetentionPolicy(days=90, batch_size=2)


def _event(source, status: EventStatus, age_days: int) -> InboxEvent:
    return InboxEventFactory(
        source=source, status=status.value, received_at=NOW - dt.timedelta(days=age_days)
    )


def test_only_finished_events_past_the_window_lose_their_body(session: Session) -> None:
    source = SourceFactory()
    old = [_event(source, s, 100) for s in (EventStatus.PROCESSED, EventStatus.IGNORED)]
    old.append(_event(source, EventStatus.PROCESSED, 91))
    kept = [
        _event(source, EventStatus.PROCESSED, 89),
        *(_event(source, s, 200) for s in (EventStatus.INVALID, EventStatus.FAILED)),
        _event(source, EventStatus.DEAD, 200),
        _event(source, EventStatus.RECEIVED, 200),
    ]
    session.flush()
    cutoff = POLICY.cutoff(NOW)
    summary = retention.prunable_summary(session, cutoff=cutoff)
    assert summary.events == 3
    assert summary.bytes == sum(len(e.body) for e in old)
    batches = []
    while done := retention.prune_bodies(session, cutoff=cutoff, limit=POLICY.batch_size, now=NOW):
        batches.append(done)
    assert batches == [2, 1]
    for event in old:
        session.refresh(event)
        assert event.body == b""
        assert event.body_removed_by == "retention"
        assert event.webhook_id.startswith("msg_")
    for event in kept:
        session.refresh(event)
        assert event.body.startswith(b"{")
        assert event.body_removed_at is None
    assert retention.prunable_summary(session, cutoff=cutoff).events == 0


def test_a_pruned_event_says_so_and_does_not_replay(session: Session) -> None:
    event = _event(SourceFactory(), EventStatus.PROCESSED, 120)
    session.flush()
    retention.prune_bodies(session, cutoff=POLICY.cutoff(NOW), limit=10, now=NOW)
    session.refresh(event)
    document = event_document(event, None)
    assert document["body_removed_by"] == "retention"
    assert document["body_removed_at"].startswith("2026-12-03")
    assert "by the inbox retention" in (retention.body_removed_message(event) or "")
    with pytest.raises(NotReplayable, match="its body was removed on 2026-12-03"):
        replay_event(session, event_id=event.id)
    assert event.id not in replayable_ids(session, status=EventStatus.PROCESSED)


def test_zero_days_keeps_every_body() -> None:
    assert not retention.RetentionPolicy(days=0).enabled
