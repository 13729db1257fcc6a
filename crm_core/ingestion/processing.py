"""The lifecycle of an inbox event: claim, complete, fail, retry, replay, sweep.

    received ──claim──▶ processing ──▶ processed
        ▲                  │ ├──────▶ invalid | failed   (permanent)
        └── retry (backoff)┘ └──────▶ dead               (after N attempts)

Every change is a conditional UPDATE on the current status, so two workers
given the same event cannot both process it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import String, and_, cast, func, literal, or_, select, update
from sqlalchemy.orm import Session

from crm_core.backoff import backoff_delay
from crm_core.db import dialect_insert, utcnow
from crm_core.errors import InvalidInput, PermanentError, error_line
from crm_core.ingestion.errors import is_transient
from crm_core.ingestion.models import EventEntity, EventStatus, InboxEvent, Source

# The states an operator may replay from. A processed event replays too (after
# a rule changed, say): handlers are idempotent, so it writes nothing twice.
REPLAYABLE = (EventStatus.INVALID, EventStatus.FAILED, EventStatus.DEAD, EventStatus.PROCESSED)
_ERROR_LIMIT = 2000
# Why a claim ended without a word from its worker (out of memory, hard time limit).
WORKER_DIED = "worker died while processing"


class EventNotFound(LookupError):
    """No inbox event has this id."""


class NotReplayable(ValueError):
    """The event is in a state that replay would not change for the better."""


def get_event(session: Session, *, event_id: int) -> InboxEvent:
    """The event ``event_id``; ``EventNotFound`` otherwise."""
    event = session.get(InboxEvent, event_id) if 0 < event_id < 2**63 else None
    if event is None:
        raise EventNotFound(f"no event {event_id}")
    return event


@dataclass(frozen=True)
class Reading:
    """How an event is read: its source's ``provider`` and that source's stored ``mapping``."""

    provider: str
    mapping: dict[str, Any] | None = None


def events_with_providers(
    session: Session, *, event_ids: Sequence[int]
) -> dict[int, tuple[InboxEvent, Reading]]:
    """The events ``event_ids``, each with how its source's provider reads it, in one query."""
    query = (
        select(InboxEvent, Source.provider, Source.mapping)
        .join(Source, Source.id == InboxEvent.source_id)
        .where(InboxEvent.id.in_(list(event_ids)))
    )
    return {
        event.id: (event, Reading(provider, mapping))
        for event, provider, mapping in session.execute(query)
    }


def claim_event(
    session: Session,
    *,
    event_id: int,
    max_attempts: int | None = None,
    now: dt.datetime | None = None,
) -> bool:
    """Move the event from ``received`` to ``processing``; ``True`` if this caller won.

    An event that already had ``max_attempts`` claims is not claimed again but
    marked ``dead`` (see ``bury_exhausted``).
    """
    return bool(claim_events(session, event_ids=[event_id], max_attempts=max_attempts, now=now))


def claim_events(
    session: Session,
    *,
    event_ids: Sequence[int],
    max_attempts: int | None = None,
    now: dt.datetime | None = None,
) -> dict[int, str]:
    """``claim_event`` for many events in one statement: the kind of each one this caller won.

    The result keeps the order of ``event_ids``.
    """
    wanted = list(dict.fromkeys(event_ids))
    if not wanted:
        return {}
    claimable = [InboxEvent.id.in_(wanted), InboxEvent.status == EventStatus.RECEIVED]
    if max_attempts is not None:
        bury_exhausted(session, event_ids=wanted, max_attempts=max_attempts)
        claimable.append(InboxEvent.attempts < max_attempts)
    result = session.execute(
        update(InboxEvent)
        .where(*claimable)
        .values(
            status=EventStatus.PROCESSING,
            claimed_at=now or utcnow(),
            attempts=InboxEvent.attempts + 1,
        )
        .returning(InboxEvent.id, InboxEvent.kind)
        .execution_options(synchronize_session=False)
    )
    won: dict[int, str] = {event_id: kind for event_id, kind in result}
    return {event_id: won[event_id] for event_id in wanted if event_id in won}


def bury_exhausted(session: Session, *, event_ids: Sequence[int], max_attempts: int) -> int:
    """Mark ``dead`` the waiting events among ``event_ids`` that used up their attempts.

    Every failure a worker records at the last attempt already makes the event
    ``dead`` (``schedule_retry``). A waiting event with no attempt left is one
    whose last claim ended without a word: the worker died (out of memory,
    killed at the hard time limit) and the sweeper released the claim. Claiming
    it again would only kill another worker, forever; the reason the sweeper
    noted is kept.
    """
    result = session.execute(
        update(InboxEvent)
        .where(
            InboxEvent.id.in_(list(event_ids)),
            InboxEvent.status == EventStatus.RECEIVED,
            InboxEvent.attempts >= max_attempts,
        )
        .values(
            status=EventStatus.DEAD,
            error=literal("gave up after ")
            + cast(InboxEvent.attempts, String)
            + " attempts: "
            + func.coalesce(InboxEvent.error, WORKER_DIED),
            next_attempt_at=None,
        )
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


def complete_event(
    session: Session,
    *,
    event_id: int,
    entities: Iterable[tuple[str, int]],
    now: dt.datetime | None = None,
) -> None:
    """Mark a claimed event ``processed`` and link what it created or touched."""
    complete_events(session, completed={event_id: entities}, now=now)


def complete_events(
    session: Session,
    *,
    completed: dict[int, Iterable[tuple[str, int]]],
    now: dt.datetime | None = None,
) -> None:
    """``complete_event`` for many events: one UPDATE and one INSERT of links in all."""
    if not completed:
        return
    session.execute(
        update(InboxEvent)
        .where(InboxEvent.id.in_(list(completed)), InboxEvent.status == EventStatus.PROCESSING)
        .values(
            status=EventStatus.PROCESSED,
            processed_at=now or utcnow(),
            error=None,
            errors=None,
            next_attempt_at=None,
        )
        .execution_options(synchronize_session=False)
    )
    links = [
        {"event_id": event_id, "entity_type": kind, "entity_id": entity_id}
        for event_id, entities in completed.items()
        for kind, entity_id in sorted(set(entities))
    ]
    if links:
        session.execute(dialect_insert(session, EventEntity).values(links).on_conflict_do_nothing())


def fail_event(
    session: Session,
    *,
    event_id: int,
    error: str,
    status: EventStatus = EventStatus.FAILED,
    errors: list[dict[str, Any]] | None = None,
) -> None:
    """Mark a claimed event ``failed`` (or ``invalid``/``dead``) with the reason."""
    _transition(session, event_id, status, error=error[:_ERROR_LIMIT], errors=errors)


def schedule_retry(
    session: Session,
    *,
    event_id: int,
    error: str,
    max_attempts: int,
    backoff_max: float,
    now: dt.datetime | None = None,
) -> float | None:
    """Put a claimed event back for a later attempt; ``None`` when it is now ``dead``."""
    now = now or utcnow()
    attempts = session.scalar(select(InboxEvent.attempts).where(InboxEvent.id == event_id)) or 0
    if attempts >= max_attempts:
        fail_event(
            session,
            event_id=event_id,
            status=EventStatus.DEAD,
            error=f"gave up after {attempts} attempts: {error}",
        )
        return None
    delay = backoff_delay(attempts, cap=backoff_max)
    _transition(
        session,
        event_id,
        EventStatus.RECEIVED,
        error=error[:_ERROR_LIMIT],
        next_attempt_at=now + dt.timedelta(seconds=delay),
    )
    return delay


def replay_event(session: Session, *, event_id: int) -> InboxEvent:
    """Send an ``invalid``, ``failed``, ``dead`` or ``processed`` event through processing again."""
    event = get_event(session, event_id=event_id)
    if event.status not in REPLAYABLE:
        raise NotReplayable(f"event {event_id} is {event.status}; only {_names(REPLAYABLE)} replay")
    if event.body_removed_at is not None:
        # Processing an empty body would only make the event ``invalid``.
        raise NotReplayable(
            f"event {event_id} cannot be replayed: its body was removed on"
            f" {event.body_removed_at:%Y-%m-%d} ({event.body_removed_by})"
        )
    event.status = EventStatus.RECEIVED
    event.attempts = 0
    event.error = None
    event.errors = None
    event.next_attempt_at = None
    event.claimed_at = None
    session.flush()
    return event


def replayable_ids(session: Session, *, status: EventStatus, limit: int = 10_000) -> list[int]:
    """Ids of the events in ``status`` (one of the replayable ones) that still have their
    body, oldest first."""
    if status not in REPLAYABLE:
        raise NotReplayable(f"only {_names(REPLAYABLE)} events replay")
    query = (
        select(InboxEvent.id)
        .where(InboxEvent.status == status, InboxEvent.body_removed_at.is_(None))
        .order_by(InboxEvent.id)
        .limit(limit)
    )
    return list(session.scalars(query))


def due_for_sweep(
    session: Session,
    *,
    received_grace: dt.timedelta,
    claim_timeout: dt.timedelta,
    republish_after: dt.timedelta,
    now: dt.datetime | None = None,
    limit: int = 1000,
) -> list[int]:
    """Events to publish again: unclaimed ones past their grace, and claims that timed out.

    A claim older than the task time limit belongs to a worker that died; it is
    released to ``received``, saying so. The next claim counts as an attempt, so
    an event that kills every worker that takes it ends ``dead``. Each returned
    event is not returned again before ``republish_after``, so a long queue is
    not flooded with copies.
    """
    now = now or utcnow()
    session.execute(
        update(InboxEvent)
        .where(
            InboxEvent.status == EventStatus.PROCESSING,
            InboxEvent.claimed_at <= now - claim_timeout,
        )
        .values(
            status=EventStatus.RECEIVED,
            next_attempt_at=now,
            # Said now, so the event shows why it waits again, and so that
            # ``bury_exhausted`` can say why it gave up.
            error=literal(f"{WORKER_DIED} (attempt ") + cast(InboxEvent.attempts, String) + ")",
        )
        .execution_options(synchronize_session=False)
    )
    waiting = or_(
        and_(InboxEvent.next_attempt_at.is_(None), InboxEvent.received_at <= now - received_grace),
        InboxEvent.next_attempt_at <= now,
    )
    query = (
        select(InboxEvent.id)
        .where(InboxEvent.status == EventStatus.RECEIVED, waiting)
        .order_by(InboxEvent.id)
        .limit(limit)
    )
    ids = list(session.scalars(query))
    if ids:
        session.execute(
            update(InboxEvent)
            .where(InboxEvent.id.in_(ids), InboxEvent.status == EventStatus.RECEIVED)
            .values(next_attempt_at=now + republish_after)
            .execution_options(synchronize_session=False)
        )
    return ids


def _transition(session: Session, event_id: int, status: EventStatus, **values: Any) -> None:
    """Change a claimed (``processing``) event's status; a no-op if someone else moved it."""
    session.execute(
        update(InboxEvent)
        .where(InboxEvent.id == event_id, InboxEvent.status == EventStatus.PROCESSING)
        .values(status=status, **values)
        .execution_options(synchronize_session=False)
    )


def _names(statuses: Sequence[EventStatus]) -> str:
    return ", ".join(s.value for s in statuses)


@dataclass(frozen=True)
class FailureOutcome:
    """What became of an event whose processing raised: its status and any retry delay."""

    status: EventStatus
    retry_in: float | None = None


def record_failure(
    session: Session, *, event_id: int, exc: Exception, max_attempts: int, backoff_max: float
) -> FailureOutcome:
    """Mark the event invalid, failed, dead, or due for a retry, depending on ``exc``."""
    if isinstance(exc, InvalidInput):
        fail_event(
            session,
            event_id=event_id,
            error=str(exc),
            status=EventStatus.INVALID,
            errors=exc.error_dicts(),
        )
        return FailureOutcome(EventStatus.INVALID)
    if isinstance(exc, PermanentError):
        fail_event(session, event_id=event_id, error=str(exc))
        return FailureOutcome(EventStatus.FAILED)
    reason = error_line(exc, limit=_ERROR_LIMIT)
    if not is_transient(exc):
        # A bug, not bad luck: retrying will not help; an operator replays after the fix.
        fail_event(session, event_id=event_id, error=reason)
        return FailureOutcome(EventStatus.FAILED)
    delay = schedule_retry(
        session, event_id=event_id, error=reason, max_attempts=max_attempts, backoff_max=backoff_max
    )
    if delay is None:
        return FailureOutcome(EventStatus.DEAD)
    return FailureOutcome(EventStatus.RECEIVED, retry_in=delay)
