"""Which handler turns an event of each kind into CRM entities, and running it.

A handler takes the session and the claimed event and returns the entities it
created or touched as ``(entity_type, id)`` pairs. It runs inside the task's
transaction, must be idempotent (upserts on natural keys), and raises
``PermanentError`` for input it can never process.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

from sqlalchemy.orm import Session

from crm_core.config import get_settings
from crm_core.errors import InvalidInput, PermanentError
from crm_core.ingestion.models import EventKind, InboxEvent
from crm_core.ingestion.processing import complete_event, get_event
from crm_core.ingestion.schemas import Payload
from crm_core.ingestion.validation import validate_payload
from crm_core.mail.model import MailLimits

Handler = Callable[[Session, InboxEvent], list[tuple[str, int]]]

HANDLERS: dict[str, Handler] = {}
# Modules whose import registers handlers; the worker imports them at start-up.
HANDLER_MODULES: list[str] = ["crm_core.ingestion.handlers"]


def register_handler(
    kind: EventKind | str, *, replace: bool = False
) -> Callable[[Handler], Handler]:
    """Decorator: make the function the handler of ``kind``."""
    kind = EventKind(kind).value

    def decorate(handler: Handler) -> Handler:
        if kind in HANDLERS and not replace and HANDLERS[kind] is not handler:
            raise ValueError(f"kind {kind!r} already has a handler: {HANDLERS[kind]!r}")
        HANDLERS[kind] = handler
        return handler

    return decorate


def load_handlers() -> None:
    """Import the modules of ``HANDLER_MODULES`` and ``CRM_HANDLER_MODULES`` (handlers register)."""
    for name in [*HANDLER_MODULES, *get_settings().handler_modules]:
        importlib.import_module(name)


def event_payload(event: InboxEvent) -> Payload:
    """The validated payload of a stored event; ``InvalidInput`` if it does not validate."""
    settings = get_settings()
    outcome = validate_payload(
        event.kind,
        event.body,
        event.content_type,
        max_depth=settings.max_json_depth,
        mail_limits=MailLimits.from_settings(settings),
    )
    if outcome.payload is None or outcome.errors:
        raise InvalidInput(outcome.errors)
    return outcome.payload


def run_event(session: Session, *, event_id: int) -> list[tuple[str, int]]:
    """Process a claimed event with its kind's handler and mark it ``processed``."""
    event = get_event(session, event_id=event_id)
    # Validated again: the event may be a replay after the rules or the data changed.
    event_payload(event)
    handler = HANDLERS.get(event.kind)
    if handler is None:
        raise PermanentError(f"no handler for kind {event.kind!r}")
    entities = handler(session, event)
    complete_event(session, event_id=event_id, entities=entities)
    return entities
