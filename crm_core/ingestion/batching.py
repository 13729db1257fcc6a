"""Processing many claimed events of one kind in one transaction.

A worker handed a burst of events (``crm.ingest.process_events``) runs those
of a kind whose table entry has ``handle_many`` (leads: ``leads.batch``, a few
statements for the whole batch instead of about twenty per event) together.
The events end as they would one by one: ``processed`` with their entities,
or ``invalid`` with their errors, all in the batch's one commit. Anything else
that goes wrong (a conflict with a concurrent writer, a deadlock, a lost
connection) raises; the caller rolls back and processes the events one by one,
where each failure is that event's own.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from sqlalchemy.orm import Session

from crm_core.errors import InvalidInput
from crm_core.ingestion.handlers import HANDLERS, KindHandler
from crm_core.ingestion.models import EventStatus, InboxEvent
from crm_core.ingestion.policy import IngestPolicy
from crm_core.ingestion.processing import (
    Reading,
    complete_events,
    events_with_providers,
    fail_event,
)

P = TypeVar("P")


@dataclass
class BatchOutcome:
    """What became of each event of a batch."""

    processed: list[int] = field(default_factory=list)
    invalid: list[int] = field(default_factory=list)


def batchable(kind: str) -> bool:
    """Whether events of ``kind`` are processed many at a time (their handler has that form)."""
    entry = HANDLERS.get(kind)
    return entry is not None and entry.handle_many is not None


def run_batch(
    session: Session, *, kind: str, event_ids: Sequence[int], policy: IngestPolicy
) -> BatchOutcome:
    """Handle these claimed events of ``kind`` together; mark each ``processed`` or ``invalid``."""
    found = events_with_providers(session, event_ids=event_ids)
    ordered = []
    for event_id in event_ids:
        event, reading = found.get(event_id, (None, None))
        if event is None or reading is None or event.kind != kind:
            raise ValueError(f"event {event_id} is not a stored {kind} event")
        ordered.append((event, reading))
    return _run_many(session, HANDLERS[kind], ordered, policy)


def _run_many(
    session: Session,
    entry: KindHandler[P],
    events: list[tuple[InboxEvent, Reading]],
    policy: IngestPolicy,
) -> BatchOutcome:
    if entry.handle_many is None:
        raise ValueError("this kind is processed one event at a time")
    outcome = BatchOutcome()
    parsed: list[tuple[InboxEvent, P]] = []
    for event, reading in events:
        try:
            parsed.append(
                (event, entry.parse_from(event, policy, reading.provider, reading.mapping))
            )
        except InvalidInput as exc:
            fail_event(
                session,
                event_id=event.id,
                error=str(exc),
                status=EventStatus.INVALID,
                errors=exc.error_dicts(),
            )
            outcome.invalid.append(event.id)
    results = entry.handle_many(session, parsed, policy) if parsed else []
    complete_events(
        session,
        completed={
            event.id: entities for (event, _), entities in zip(parsed, results, strict=True)
        },
    )
    outcome.processed = [event.id for event, _ in parsed]
    return outcome
