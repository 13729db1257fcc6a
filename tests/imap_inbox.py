"""A store callback for the IMAP reader that writes to the real inbox table.

It dedupes the way the platform's own will: one inbox event per (source,
Message-ID), falling back to UIDVALIDITY + UID for a message without one; and it
commits before it returns, which is what lets the reader flag the message.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Engine, func, select

from crm_core.db import dialect_insert, make_session_factory, utcnow
from crm_core.ingestion.models import InboxEvent, Source
from crm_core.mail.message_ids import normalize_message_id
from crm_core.mailboxes.imap import FetchedMessage
from crm_core.payloads.kinds import EventKind
from tests.imap_server import message_id_of


def dedupe_key(message: FetchedMessage) -> str:
    message_id = normalize_message_id(message_id_of(message.raw))
    return message_id or f"imap-uid:{message.uidvalidity}:{message.uid}"


def inbox_store(engine: Engine, *, source_name: str = "imap:support") -> Callable[..., bool]:
    """``store(message) -> bool`` writing one ``inbox_events`` row per distinct message."""
    sessions = make_session_factory(engine)
    with sessions.begin() as session:
        source = Source(name=source_name)
        session.add(source)
        session.flush()
        source_id = source.id

    def store(message: FetchedMessage) -> bool:
        with sessions.begin() as session:
            inserted = session.execute(
                dialect_insert(session, InboxEvent)
                .values(
                    source_id=source_id,
                    kind=EventKind.EMAILS,
                    webhook_id=dedupe_key(message),
                    content_type="message/rfc822",
                    headers={},
                    body=message.raw,
                    status="received",
                    attempts=0,
                    received_at=utcnow(),
                )
                .on_conflict_do_nothing()
                .returning(InboxEvent.id)
            ).scalar()
        return inserted is not None

    return store


def stored_keys(engine: Engine) -> list[str]:
    """The dedupe keys of every stored event, in insertion order."""
    with make_session_factory(engine)() as session:
        return list(session.scalars(select(InboxEvent.webhook_id).order_by(InboxEvent.id)))


def stored_count(engine: Engine) -> int:
    with make_session_factory(engine)() as session:
        return session.scalar(select(func.count()).select_from(InboxEvent)) or 0
