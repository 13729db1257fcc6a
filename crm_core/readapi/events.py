"""Inbox events as people see them: the public view of one (``GET /events/<id>``,
``crm events show`` and the console), and the filtered lists the console shows and replays."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, select
from sqlalchemy.orm import Session

from crm_core.errors import FieldError, InvalidInput
from crm_core.ingestion.models import EventStatus, InboxEvent, Source
from crm_core.readapi.lists import BadValue, parse_time


def event_document(event: InboxEvent, source: Source | None) -> dict[str, Any]:
    """An inbox event as senders and operators see it: status, errors, what it touched."""

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
        # The raw body is dropped by retention or by an erasure; the rest stays.
        "body_removed_at": iso(event.body_removed_at),
        "body_removed_by": event.body_removed_by,
        "entities": [{"type": e.entity_type, "id": e.entity_id} for e in event.entities],
    }


@dataclass(frozen=True)
class EventFilter:
    """Which events an operator is looking at; every part optional."""

    source: str | None = None
    kind: str | None = None
    status: str | None = None
    since: dt.datetime | None = None
    until: dt.datetime | None = None

    def conditions(self) -> list[ColumnElement[bool]]:
        where: list[ColumnElement[bool]] = []
        if self.source:
            where.append(Source.name == self.source)
        if self.kind:
            where.append(InboxEvent.kind == self.kind)
        if self.status:
            where.append(InboxEvent.status == self.status)
        if self.since:
            where.append(InboxEvent.received_at >= self.since)
        if self.until:
            where.append(InboxEvent.received_at < self.until)
        return where


def parse_event_filter(params: Mapping[str, str]) -> EventFilter:
    """The filter in query parameters ``source``, ``kind``, ``status``, ``since``, ``until``;
    ``InvalidInput`` naming each bad one."""
    errors: list[FieldError] = []
    values: dict[str, Any] = {}
    for name in ("source", "kind"):
        text = (params.get(name) or "").strip()
        if len(text) > 255:
            errors.append(FieldError((name,), "must be at most 255 characters"))
        values[name] = text or None
    status = (params.get("status") or "").strip().lower()
    if status and status not in {s.value for s in EventStatus}:
        allowed = ", ".join(s.value for s in EventStatus)
        errors.append(FieldError(("status",), f"must be one of {allowed}"))
    values["status"] = status or None
    for name in ("since", "until"):
        text = (params.get(name) or "").strip()
        try:
            values[name] = parse_time(text) if text else None
        except BadValue as exc:
            errors.append(FieldError((name,), str(exc)))
    if errors:
        raise InvalidInput(errors)
    return EventFilter(**values)


def list_events(
    session: Session, *, where: EventFilter, before_id: int | None = None, limit: int = 50
) -> list[tuple[InboxEvent, str]]:
    """The events matching ``where``, newest first, with their source's name; ``before_id``
    pages on (the last id of the page before)."""
    query = (
        select(InboxEvent, Source.name)
        .join(Source, Source.id == InboxEvent.source_id)
        .where(*where.conditions())
        .order_by(InboxEvent.id.desc())
        .limit(limit)
    )
    if before_id is not None:
        query = query.where(InboxEvent.id < before_id)
    return [(event, name) for event, name in session.execute(query)]


# What "replay every event that matches" takes: the ones that went wrong.
REPLAY_ALL = (EventStatus.FAILED, EventStatus.DEAD, EventStatus.INVALID)


def replayable_matching(session: Session, *, where: EventFilter, limit: int = 10_000) -> list[int]:
    """Ids of the failed, dead or invalid events matching ``where`` (its status, when it names
    one of those), oldest first."""
    statuses = [s.value for s in REPLAY_ALL if where.status in (None, s.value)]
    query = (
        select(InboxEvent.id)
        .join(Source, Source.id == InboxEvent.source_id)
        .where(*where.conditions(), InboxEvent.status.in_(statuses))
        .order_by(InboxEvent.id)
        .limit(limit)
    )
    return list(session.scalars(query))


def source_names(session: Session) -> list[str]:
    """Every source's name, for a filter's choices."""
    return list(session.scalars(select(Source.name).order_by(Source.name)))
