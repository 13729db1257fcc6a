"""The public view of an inbox event, shared by ``GET /events/<id>`` and ``crm events show``."""

from __future__ import annotations

from typing import Any

from crm_core.ingestion.models import InboxEvent, Source


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
