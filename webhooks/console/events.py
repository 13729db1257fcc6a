"""Events (``/console/events``): the inbox filtered by source, kind, status and time; one
event whole (its payload pretty-printed, its headers, its attempts and errors, the records it
produced); replaying one, or every failed one a filter matches, after a confirmation.

Replays go through ``crm_core.admin.events.replay_events`` (the ``write`` permission,
audited) and are published after the commit, as ``crm events replay`` does."""

from __future__ import annotations

import contextlib
import json
from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from werkzeug.datastructures import MultiDict
from werkzeug.wrappers import Response

from crm_core.admin.events import replay_events
from crm_core.errors import InvalidInput
from crm_core.ingestion.models import EventStatus, InboxEvent, Source
from crm_core.ingestion.processing import REPLAYABLE, EventNotFound, NotReplayable
from crm_core.people.permissions import Permission
from crm_core.readapi.events import (
    EventFilter,
    event_document,
    list_events,
    parse_event_filter,
    replayable_matching,
    source_names,
)
from webhooks.console.access import console_route, current_actor
from webhooks.console.forms import FormErrors
from webhooks.publisher import event_publisher
from webhooks.state import crm_state

bp = Blueprint("events", __name__)

PAGE_SIZE = 50
PAYLOAD_LIMIT = 256 * 1024  # characters of a body shown; the rest is left out, and said so
FILTER_FIELDS = ("source", "kind", "status", "since", "until")
# Where an entity an event produced is shown in the console, by its type.
ENTITY_PAGES = {
    "customer": ("console.people.customer", "customer_id"),
    "contact": ("console.people.contact", "contact_id"),
    "support_case": ("console.cases.show", "case_id"),
    "opportunity": ("console.pipeline.show", "opportunity_id"),
    "campaign": ("console.campaigns.show", "campaign_id"),
}


def _filter_args(params: MultiDict[str, str]) -> dict[str, Any]:
    return {name: params[name] for name in FILTER_FIELDS if params.get(name)}


def _parsed(params: MultiDict[str, str]) -> tuple[EventFilter, FormErrors]:
    try:
        return parse_event_filter(params), FormErrors()
    except InvalidInput as exc:
        return EventFilter(), FormErrors.of(exc, known=FILTER_FIELDS)


def _before(params: MultiDict[str, str]) -> int | None:
    raw = params.get("before", "")
    return int(raw) if raw.isascii() and raw.isdigit() and 0 < int(raw) < 2**63 else None


@bp.get("")
@console_route(Permission.READ)
def index() -> tuple[str, int]:
    """The inbox, newest first, filtered."""
    where, errors = _parsed(request.args)
    with crm_state().sessions() as db:
        rows = [] if errors else list_events(db, where=where, before_id=_before(request.args))
        rows = rows[:PAGE_SIZE]
        sources = source_names(db)
    page = render_template(
        "console/events/index.html",
        rows=rows,
        sources=sources,
        statuses=[s.value for s in EventStatus],
        form=request.args,
        errors=errors,
        filters=_filter_args(request.args),
        older=rows[-1][0].id if len(rows) == PAGE_SIZE else None,
    )
    return page, 422 if errors else 200


def _payload(event: InboxEvent) -> tuple[str, bool]:
    """The body as text: JSON indented, anything else decoded; and whether it was cut."""
    text = event.body.decode("utf-8", errors="replace")
    if "json" in (event.content_type or ""):
        with contextlib.suppress(ValueError):  # not JSON after all: shown as it came
            text = json.dumps(json.loads(text), indent=2, ensure_ascii=False)
    return text[:PAYLOAD_LIMIT], len(text) > PAYLOAD_LIMIT


def _entity_links(document: dict[str, Any]) -> list[dict[str, Any]]:
    links = []
    for entity in document["entities"]:
        endpoint, argument = ENTITY_PAGES.get(entity["type"], ("", ""))
        links.append({**entity, "endpoint": endpoint, "argument": argument})
    return links


@bp.get("/<int:event_id>")
@console_route(Permission.READ)
def show(event_id: int) -> str:
    """One event: what arrived, what became of it."""
    with crm_state().sessions() as db:
        event = db.get(InboxEvent, event_id) if event_id < 2**63 else None
        if event is None:
            abort(404, f"There is no event {event_id}.")
        document = event_document(event, db.get(Source, event.source_id))
        payload, cut = _payload(event)
        return render_template(
            "console/events/show.html",
            event=document,
            content_type=event.content_type,
            headers=sorted((event.headers or {}).items()),
            payload=payload,
            payload_cut=cut,
            entities=_entity_links(document),
            replayable=event.status in REPLAYABLE,
        )


@bp.get("/<int:event_id>/replay")
@console_route(Permission.WRITE)
def confirm_replay(event_id: int) -> str:
    """Ask before replaying one event."""
    with crm_state().sessions() as db:
        event = db.get(InboxEvent, event_id) if event_id < 2**63 else None
        if event is None:
            abort(404, f"There is no event {event_id}.")
        document = event_document(event, db.get(Source, event.source_id))
    return render_template("console/events/confirm.html", event=document, count=1, filters={})


def _publish(event_ids: list[int]) -> None:
    """Hand replayed events to the workers (after the commit; the sweeper has any left)."""
    publisher = event_publisher()
    for event_id in event_ids:
        publisher.submit(event_id)


@bp.post("/<int:event_id>/replay")
@console_route(Permission.WRITE)
def replay(event_id: int) -> Response:
    """Replay one event, then show it."""
    try:
        with crm_state().sessions.begin() as db:
            replayed = replay_events(db, actor=current_actor(), event_ids=[event_id])
    except EventNotFound:
        abort(404, f"There is no event {event_id}.")
    except NotReplayable as exc:
        flash(f"Not replayed: {exc}.", "error")
        return redirect(url_for("console.events.show", event_id=event_id), 303)
    _publish(replayed)
    flash(f"Event {event_id} is queued to be processed again.", "notice")
    return redirect(url_for("console.events.show", event_id=event_id), 303)


@bp.get("/replay")
@console_route(Permission.WRITE)
def confirm_replay_matching() -> tuple[str, int]:
    """Ask before replaying every failed, dead or invalid event the filter matches."""
    where, errors = _parsed(request.args)
    if errors:
        return index()
    with crm_state().sessions() as db:
        count = len(replayable_matching(db, where=where))
    page = render_template(
        "console/events/confirm.html", event=None, count=count, filters=_filter_args(request.args)
    )
    return page, 200


@bp.post("/replay")
@console_route(Permission.WRITE)
def replay_matching() -> Response | tuple[str, int]:
    """Replay every failed, dead or invalid event the filter matches."""
    where, errors = _parsed(request.form)
    if errors:
        return index()
    with crm_state().sessions.begin() as db:
        ids = replayable_matching(db, where=where)
        replayed = replay_events(db, actor=current_actor(), event_ids=ids)
    _publish(replayed)
    flash(f"{len(replayed)} event(s) queued to be processed again.", "notice")
    return redirect(url_for("console.events.index", **_filter_args(request.form)), 303)
