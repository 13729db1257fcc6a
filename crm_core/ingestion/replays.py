"""Replaying events on a person's behalf: the permission checked, each replay audited.

``crm events replay`` (an operator at the shell) calls ``processing.replay_event`` directly;
the console calls ``replay_events`` with the signed-in user, who needs the ``write``
permission: a replay writes CRM data again, through the same handlers.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy.orm import Session

from crm_core.ingestion.processing import get_event, replay_event
from crm_core.people import audit
from crm_core.people.permissions import Actor, Permission


def replay_events(session: Session, *, actor: Actor, event_ids: Iterable[int]) -> list[int]:
    """Send each event through processing again (``EventNotFound`` / ``NotReplayable`` for
    one that cannot be); the ids, to publish after the commit."""
    actor.require(Permission.WRITE)
    replayed = []
    for event_id in event_ids:
        before = get_event(session, event_id=event_id).status
        event = replay_event(session, event_id=event_id)
        changes = {"status": {"before": before, "after": event.status}}
        audit.record(
            session,
            actor=actor,
            entity="event",
            entity_id=event.id,
            action="replay",
            changes=changes,
        )
        replayed.append(event.id)
    return replayed
