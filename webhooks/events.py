"""``GET /events/<id>``: where an accepted webhook got to, for the sender or an operator."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify

from crm_core.ingestion.models import InboxEvent, Source
from crm_core.ingestion.processing import EventNotFound, get_event
from webhooks.auth import require_api_key
from webhooks.problems import problem
from webhooks.state import crm_state

bp = Blueprint("events", __name__)


def event_document(event: InboxEvent, source: Source | None) -> dict[str, Any]:
    """The public view of an inbox event."""

    def iso(value: Any) -> str | None:
        return value.isoformat() if value is not None else None

    return {
        "event_id": event.id,
        "source": source.name if source else None,
        "kind": event.kind,
        "webhook_id": event.webhook_id,
        "topic": event.topic,
        "status": event.status,
        "attempts": event.attempts,
        "error": event.error,
        "errors": event.errors or [],
        "received_at": iso(event.received_at),
        "processed_at": iso(event.processed_at),
        "next_attempt_at": iso(event.next_attempt_at),
        "outcome": event.outcome,
        "entities": [{"type": e.entity_type, "id": e.entity_id} for e in event.entities],
    }


@bp.get("/events/<int:event_id>")
@require_api_key
def show_event(event_id: int) -> Response:
    """The status of one event and the entities it created or touched."""
    with crm_state().sessions() as session:
        try:
            event = get_event(session, event_id=event_id)
        except EventNotFound:
            return problem(404, f"No event {event_id}.", type_="unknown-event")
        document = event_document(event, session.get(Source, event.source_id))
    return jsonify(document)
