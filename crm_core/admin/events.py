"""Replaying inbox events on someone's behalf: one service for the console and the CLI.

A replay sends an event through processing again (``processing.replay_event``), so it writes
CRM data through the same handlers as the first time: it needs the ``write`` permission (agents
and admins; an operator at the shell has every permission). Each replayed event gets one audit
entry with the status, attempts and error it left behind, in the caller's transaction.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy.orm import Session

from crm_core.editing.records import snapshot
from crm_core.ingestion import processing
from crm_core.ingestion.models import InboxEvent
from crm_core.people import audit
from crm_core.people.permissions import Actor, Permission

ENTITY = "event"
AUDITED = ("status", "attempts", "error")
PERMISSION = Permission.WRITE


def replay_event(session: Session, *, actor: Actor, event_id: int) -> InboxEvent:
    """Send one event through processing again (``EventNotFound`` or ``NotReplayable`` for one
    that cannot be); publish it after the commit."""
    actor.require(PERMISSION)
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


def replay_events(session: Session, *, actor: Actor, event_ids: Iterable[int]) -> list[int]:
    """``replay_event`` for each id, all or none; the ids, to publish after the commit."""
    actor.require(PERMISSION)
    return [replay_event(session, actor=actor, event_id=one).id for one in event_ids]
