"""``GET /events/<id>``: where an accepted webhook got to, for the sender or an operator."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

from crm_core.ingestion.models import Source
from crm_core.ingestion.processing import EventNotFound, get_event
from crm_core.readapi.events import event_document
from crm_core.readapi.schemas import EventDoc
from webhooks.auth import require_api_key
from webhooks.openapi.registry import documented
from webhooks.problems import problem
from webhooks.state import crm_state

bp = Blueprint("events", __name__)


@bp.get("/events/<int:event_id>")
@documented(
    summary="Where an accepted webhook got to",
    responses={200: EventDoc, 404: "No such event."},
    tags=("events",),
)
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
