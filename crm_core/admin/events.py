"""Replaying inbox events, as operators do it: checked against the ``sources`` permission (whoever
manages the senders manages what they sent) and recorded in the audit log, one entry per event."""

from __future__ import annotations

from sqlalchemy.orm import Session

from crm_core.editing.records import snapshot
from crm_core.ingestion import processing
from crm_core.ingestion.models import InboxEvent
from crm_core.people import audit
from crm_core.people.permissions import Actor, Permission

ENTITY = "event"
AUDITED = ("status", "attempts", "error")


def replay_event(session: Session, *, actor: Actor, event_id: int) -> InboxEvent:
    """Send an event through processing again (``processing.replay_event``)."""
    actor.require(Permission.SOURCES)
    before = snapshot(processing.get_event(session, event_id=event_id), AUDITED)
    event = processing.replay_event(session, event_id=event_id)
    audit.record(
        session,
        actor=actor,
        entity=ENTITY,
        entity_id=event.id,
        action="replay",
        changes=audit.changes_between(before, snapshot(event, AUDITED)),
    )
    return event
