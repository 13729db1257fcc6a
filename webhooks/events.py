"""``GET /events/<id>``: where an accepted webhook got to, for the sender or an operator."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

from crm_core.ingestion.models import Source
from crm_core.ingestion.processing import EventNotFound, get_event
from crm_core.readapi.events import event_document
from crm_core.readapi.schemas import EventDoc
from webhooks.auth import require_api_key
from webhooks.openapi.registry import Body, Header, documented
from webhooks.problems import problem
from webhooks.state import crm_state
from webhooks.validators import content_tagged

bp = Blueprint("events", __name__)
_ETAG = {"ETag": "A digest of the document (a strong ETag); it changes as the event is processed."}


@bp.get("/events/<int:event_id>")
@documented(
    summary="Where an accepted webhook got to",
    headers=(
        Header("If-None-Match", "ETags you hold: a 304 without a body when the event has one."),
    ),
    responses={
        200: Body(EventDoc, headers=_ETAG),
        304: Body(None, description="Not modified: the ETag you hold is current.", headers=_ETAG),
        404: "No such event.",
    },
    tags=("events",),
)
@require_api_key
def show_event(event_id: int) -> Response:
    """The status of one event and the entities it created or touched, with its ETag."""
    with crm_state().sessions() as session:
        try:
            event = get_event(session, event_id=event_id)
        except EventNotFound:
            return problem(404, f"No event {event_id}.", type_="unknown-event")
        document = event_document(event, session.get(Source, event.source_id))
    return content_tagged(jsonify(document), f"event-{event_id}")
