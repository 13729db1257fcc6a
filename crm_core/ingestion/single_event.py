"""Running a claimed event through its kind's entry of ``handlers.HANDLERS``."""

from __future__ import annotations

from sqlalchemy.orm import Session

from crm_core.errors import PermanentError
from crm_core.ingestion.handlers import HANDLERS, Entities
from crm_core.ingestion.policy import IngestPolicy
from crm_core.ingestion.processing import EventNotFound, complete_event, events_with_providers


def run_event(session: Session, *, event_id: int, policy: IngestPolicy) -> Entities:
    """Process a claimed event with its kind's handler and mark it ``processed``."""
    found = events_with_providers(session, event_ids=[event_id]) if 0 < event_id < 2**63 else {}
    if event_id not in found:
        raise EventNotFound(f"no event {event_id}")
    event, reading = found[event_id]
    entry = HANDLERS.get(event.kind)
    if entry is None:
        raise PermanentError(f"no handler for kind {event.kind!r}")
    entities = entry.run(session, event, policy, reading.provider, reading.mapping)
    complete_event(session, event_id=event_id, entities=entities)
    return entities
