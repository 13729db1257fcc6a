"""Inbox retention: the raw body of a finished event is dropped after a while, its metadata kept.

A body is what a sender said, full of personal data; once the event is ``processed`` (or
``ignored``) the CRM holds what it meant, and after ``RetentionPolicy.days`` the body goes:
it becomes empty and ``body_removed_at`` / ``body_removed_by`` say when and why. The row,
its status, its ``webhook_id`` (a redelivery is still recognised) and its links to the
entities stay. ``invalid``, ``failed`` and ``dead`` events keep their body until they are
resolved (replayed and processed), since a replay needs it; ``received`` and ``processing``
ones are not finished.

The work is done in bounded batches, each its own short transaction, on the partial index
``ix_inbox_events_body_kept_received_at`` (which holds only the bodies still kept), so each
batch costs the same however large the inbox (docs/operations/scale.md).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import ColumnElement, and_, func, select, update
from sqlalchemy.orm import Session

from crm_core.config import Settings
from crm_core.db import utcnow
from crm_core.ingestion.models import BodyRemoval, EventStatus, InboxEvent

# Finished: nothing will read the body again unless an operator replays the event.
PRUNABLE = (EventStatus.PROCESSED, EventStatus.IGNORED)


@dataclass(frozen=True)
class RetentionPolicy:
    """How long finished events keep their body (0: forever), and how many go per batch."""

    days: int
    batch_size: int = 1000

    @classmethod
    def from_settings(cls, settings: Settings) -> RetentionPolicy:
        return cls(days=settings.inbox_retention_days, batch_size=settings.retention_batch_size)

    @property
    def enabled(self) -> bool:
        return self.days > 0

    def cutoff(self, now: dt.datetime) -> dt.datetime:
        """Events received before this instant lose their body."""
        return now - dt.timedelta(days=self.days)


@dataclass(frozen=True)
class PruneSummary:
    """What retention would drop (or dropped): how many bodies, their bytes, the oldest one."""

    events: int
    bytes: int
    oldest: dt.datetime | None


def _prunable(cutoff: dt.datetime) -> ColumnElement[bool]:
    # Spelled as the partial index's predicate, so the planner can use it.
    return and_(
        InboxEvent.status.in_([s.value for s in PRUNABLE]),
        InboxEvent.body_removed_at.is_(None),
        InboxEvent.received_at < cutoff,
    )


def prunable_summary(session: Session, *, cutoff: dt.datetime) -> PruneSummary:
    """What ``prune_bodies`` would drop now, for ``crm events prune --dry-run``."""
    events, size, oldest = session.execute(
        select(
            func.count(),
            func.coalesce(func.sum(func.length(InboxEvent.body)), 0),
            func.min(InboxEvent.received_at),
        ).where(_prunable(cutoff))
    ).one()
    return PruneSummary(events=int(events), bytes=int(size), oldest=oldest)


def prune_bodies(
    session: Session, *, cutoff: dt.datetime, limit: int, now: dt.datetime | None = None
) -> int:
    """Drop the body of up to ``limit`` finished events received before ``cutoff``, oldest
    first; how many were dropped. Call it again (in a new transaction) until it returns 0."""
    picked = (
        select(InboxEvent.id)
        .where(_prunable(cutoff))
        .order_by(InboxEvent.received_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    ids = list(session.scalars(picked))
    if not ids:
        return 0
    return remove_bodies(session, event_ids=ids, reason=BodyRemoval.RETENTION, now=now)


def remove_bodies(
    session: Session,
    *,
    event_ids: list[int],
    reason: BodyRemoval,
    now: dt.datetime | None = None,
    statuses: tuple[EventStatus, ...] = PRUNABLE,
) -> int:
    """Empty the body of the events ``event_ids`` that are in ``statuses``; how many were."""
    result = session.execute(
        update(InboxEvent)
        .where(InboxEvent.id.in_(event_ids), InboxEvent.status.in_([s.value for s in statuses]))
        .values(body=b"", body_removed_at=now or utcnow(), body_removed_by=reason.value)
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


def body_removed_message(event: InboxEvent) -> str | None:
    """Why the event has no body, in one sentence; None while it has its body."""
    if event.body_removed_at is None:
        return None
    why = {
        BodyRemoval.RETENTION.value: "by the inbox retention (CRM_INBOX_RETENTION_DAYS)",
        BodyRemoval.ERASURE.value: "by the erasure of a person's data",
    }.get(event.body_removed_by or "", "")
    return f"the body of event {event.id} was removed on {event.body_removed_at:%Y-%m-%d} {why}"
