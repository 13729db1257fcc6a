"""Processing many claimed ``leads`` events in one transaction.

A worker handed a burst of events (``crm.ingest.process_events``) captures
its leads together with ``crm_core.leads.batch.capture_leads``: a few
statements for the whole batch instead of about twenty per event. The events
end as they would one by one: ``processed`` with their entities, or
``invalid`` with their errors, all in the batch's one commit. Anything else
that goes wrong (a conflict with a concurrent writer, a deadlock, a lost
connection) raises; the caller rolls back and processes the events one by one,
where each failure is that event's own.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from crm_core.config import get_settings
from crm_core.errors import InvalidInput
from crm_core.ingestion import handlers
from crm_core.ingestion.models import EventKind, EventStatus, InboxEvent
from crm_core.ingestion.pipeline import HANDLERS, event_payload
from crm_core.ingestion.processing import complete_events, fail_event
from crm_core.leads.batch import LeadItem, capture_leads
from crm_core.leads.normalize import free_mail_domains
from crm_core.leads.services import lead_of_event


@dataclass
class BatchOutcome:
    """What became of each event of a batch."""

    processed: list[int] = field(default_factory=list)
    invalid: list[int] = field(default_factory=list)


def leads_batchable() -> bool:
    """Whether ``leads`` events are handled by the built-in handler (batches are its form)."""
    return HANDLERS.get(EventKind.LEADS.value) is handlers.handle_lead


def run_lead_batch(session: Session, *, event_ids: Sequence[int]) -> BatchOutcome:
    """Capture the leads of these claimed events and mark each ``processed`` or ``invalid``."""
    settings = get_settings()
    events = {
        event.id: event
        for event in session.scalars(select(InboxEvent).where(InboxEvent.id.in_(event_ids)))
    }
    outcome = BatchOutcome()
    items: list[LeadItem] = []
    for event_id in event_ids:
        event = events.get(event_id)
        if event is None or event.kind != EventKind.LEADS.value:
            raise ValueError(f"event {event_id} is not a stored leads event")
        try:
            event_payload(event)  # validated again, as run_event does
            items.append(
                LeadItem(event.id, event.source_id, lead_of_event(event, settings=settings))
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
    free_domains = free_mail_domains(settings.extra_freemail_domain_list())
    results = capture_leads(session, items, free_domains=free_domains)
    complete_events(
        session,
        completed={
            item.event_id: result.entities
            for item, result in zip(items, results, strict=True)
            if item.event_id is not None
        },
    )
    outcome.processed = [item.event_id for item in items if item.event_id is not None]
    return outcome
