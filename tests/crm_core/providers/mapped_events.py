"""Provider events from the fixtures, stored and run through the pipeline."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from crm_core import models as m
from crm_core.config import get_settings
from crm_core.errors import InvalidInput
from crm_core.ingestion import processing, single_event
from crm_core.ingestion.handlers import Entities
from crm_core.ingestion.policy import IngestPolicy
from tests.factories import InboxEventFactory, SourceFactory

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "providers"


def fixture(provider: str, name: str) -> dict[str, Any]:
    """A provider's documented example payload."""
    document: dict[str, Any] = json.loads((FIXTURES / provider / name).read_text())
    return document


def run_provider_event(
    session: Session,
    *,
    provider: str,
    kind: str,
    topic: str,
    document: dict[str, Any],
    source: m.Source | None = None,
) -> m.InboxEvent:
    """Store ``document`` as ``provider`` would have sent it, claim and process it.

    An event the mapping refuses ends ``invalid`` with its field errors, as the
    worker leaves it.
    """
    source = source or SourceFactory(provider=provider)
    event = InboxEventFactory(
        source=source, kind=kind, topic=topic, body=json.dumps(document).encode()
    )
    assert processing.claim_event(session, event_id=event.id)
    try:
        entities: Entities = single_event.run_event(
            session, event_id=event.id, policy=IngestPolicy.from_settings(get_settings())
        )
    except InvalidInput as exc:
        processing.fail_event(
            session,
            event_id=event.id,
            error=str(exc),
            status=m.EventStatus.INVALID,
            errors=exc.error_dicts(),
        )
    else:
        assert entities
    session.refresh(event)
    return event


def linked(event: m.InboxEvent, entity_type: str) -> list[int]:
    """The ids of ``entity_type`` the event touched."""
    return [e.entity_id for e in event.entities if e.entity_type == entity_type]
