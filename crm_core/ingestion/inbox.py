"""Writing requests into the inbox: ``store_event`` in a session, ``Inbox`` for the web intake.

Both run one ``INSERT … ON CONFLICT DO NOTHING RETURNING`` (``insert_new_event``), so a
redelivery is a no-op that returns the first row's id. ``Inbox`` commits on its own, the one
writer that does; why, and how it differs by backend: ``docs/performance.md`` (Webhook intake).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, NotRequired, TypedDict, Unpack, cast

from sqlalchemy import Connection, Engine, Table, bindparam, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session
from sqlalchemy.pool import PoolProxiedConnection

from crm_core.db import utcnow
from crm_core.errors import FieldError
from crm_core.ingestion.models import EventStatus, InboxEvent
from crm_core.ingestion.services import SourceCredentials, source_credentials
from crm_core.payloads.kinds import EventKind


@dataclass(frozen=True)
class StoredEvent:
    """The inbox event a request maps to, and whether this call created it (else a redelivery)."""

    id: int
    status: str
    errors: list[Any] | None
    created: bool


_INBOX = cast(Table, InboxEvent.__table__)
EXISTING_EVENT = select(_INBOX.c.id, _INBOX.c.status, _INBOX.c.errors).where(
    _INBOX.c.source_id == bindparam("source_id"), _INBOX.c.webhook_id == bindparam("webhook_id")
)


@lru_cache(maxsize=4)
def insert_new_event(dialect: str) -> Any:
    """INSERT … ON CONFLICT DO NOTHING RETURNING, built once per backend (it runs per request).

    ON CONFLICT DO NOTHING waits for a concurrent insert of the same key to
    commit, then yields no row; ``EXISTING_EVENT`` then finds the winner's row.
    """
    insert: Any = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}[dialect]
    return (
        insert(_INBOX)
        .on_conflict_do_nothing(index_elements=["source_id", "webhook_id"])
        .returning(_INBOX.c.id, _INBOX.c.status, _INBOX.c.errors)
    )


class NewEvent(TypedDict):
    """A request as received, in the words every writer of the inbox takes."""

    source_id: int
    kind: EventKind | str
    webhook_id: str
    content_type: str
    body: bytes
    headers: NotRequired[dict[str, Any] | None]
    errors: NotRequired[list[FieldError] | None]
    # The provider's own topic or event type; ``ignored`` for one the platform does not handle.
    topic: NotRequired[str | None]
    ignored: NotRequired[bool]


def new_event_values(**event: Unpack[NewEvent]) -> dict[str, Any]:
    """The inbox row of a request just received: ``invalid`` with its ``errors`` if any."""
    errors = event.get("errors")
    status = EventStatus.INVALID if errors else EventStatus.RECEIVED
    if event.get("ignored") and not errors:
        status = EventStatus.IGNORED
    return {
        "source_id": event["source_id"],
        "kind": str(event["kind"]),
        "webhook_id": event["webhook_id"],
        "topic": event.get("topic"),
        "content_type": event["content_type"][:255],
        "headers": event.get("headers") or {},
        "body": event["body"],
        "status": str(status),
        "attempts": 0,
        "errors": [e.as_dict() for e in errors] if errors else None,
        "error": "the payload failed validation" if errors else None,
        "received_at": utcnow(),
    }


def store_event(session: Session | Connection, **event: Unpack[NewEvent]) -> StoredEvent:
    """Insert a request into the inbox once per (source, webhook-id); race-safe.

    With ``errors`` the event is stored as ``invalid``. A redelivery, even one
    racing the first delivery, inserts nothing and returns the first event.
    Takes a Core connection too. (The web intake writes through ``Inbox``,
    which runs the same statements.)
    """
    values = new_event_values(**event)
    bind = session if isinstance(session, Connection) else session.get_bind()
    row = session.execute(insert_new_event(bind.dialect.name), values).first()
    if row is not None:
        return StoredEvent(row.id, row.status, row.errors, created=True)
    key = {"source_id": event["source_id"], "webhook_id": event["webhook_id"]}
    existing = session.execute(EXISTING_EVENT, key).one()
    return StoredEvent(existing.id, existing.status, existing.errors, created=False)


# Drivers whose connections take ``autocommit`` and pyformat parameters.
DIRECT_DRIVERS = frozenset({"psycopg", "psycopg2"})
_JSON_COLUMNS = ("headers", "errors")


class Inbox:
    """Stores webhook requests for the intake, each committed before ``store`` returns."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        dialect = engine.dialect
        self.direct = dialect.name == "postgresql" and dialect.driver in DIRECT_DRIVERS
        if self.direct:
            columns = list(
                new_event_values(source_id=0, kind="", webhook_id="", content_type="", body=b"")
            )
            insert = insert_new_event(dialect.name)
            self._insert_sql = str(insert.compile(dialect=dialect, column_keys=columns))
            self._existing_sql = str(EXISTING_EVENT.compile(dialect=dialect))

    def source(self, name: str) -> SourceCredentials | None:
        """The source ``name`` with its active secrets (``None`` if unknown)."""
        with self.engine.connect() as conn:
            return source_credentials(conn, name=name)

    def store(self, **event: Unpack[NewEvent]) -> StoredEvent:
        """Store a request once per (source, webhook-id), committed; see ``store_event``."""
        if not self.direct:
            with self.engine.begin() as conn:
                return store_event(conn, **event)
        values = new_event_values(**event)
        for column in _JSON_COLUMNS:  # None becomes JSON null, as SQLAlchemy stores it
            values[column] = json.dumps(values[column])
        return self._store_direct(values)

    def _store_direct(self, values: dict[str, Any]) -> StoredEvent:
        dialect = self.engine.dialect
        dbapi_error = dialect.loaded_dbapi.Error
        statement = self._insert_sql
        fairy: PoolProxiedConnection | None = None
        row: Any = None
        try:
            fairy = self.engine.raw_connection()
            connection: Any = fairy.dbapi_connection
            connection.autocommit = True
            cursor = connection.cursor()
            try:
                cursor.execute(statement, values)
                row = cursor.fetchone()
                created = row is not None
                if not created:
                    # A redelivery (or the loser of a race): the first one's row.
                    statement = self._existing_sql
                    key = {k: values[k] for k in ("source_id", "webhook_id")}
                    cursor.execute(statement, key)
                    row = cursor.fetchone()
            finally:
                cursor.close()
        except dbapi_error as exc:
            invalidated = False
            if fairy is not None and dialect.is_disconnect(exc, fairy.dbapi_connection, None):
                fairy.invalidate(exc)
                invalidated = True
            raise DBAPIError.instance(
                statement,
                None,
                exc,
                dbapi_error,
                hide_parameters=True,
                connection_invalidated=invalidated,
                dialect=dialect,
            ) from exc
        finally:
            if fairy is not None:
                _release(fairy, dbapi_error)
        return StoredEvent(row[0], row[1], row[2], created=created)


def _release(fairy: PoolProxiedConnection, dbapi_error: type[Exception]) -> None:
    """Back to the pool out of autocommit; a connection that cannot be reset is dropped."""
    connection: Any = fairy.dbapi_connection
    if connection is not None:
        try:
            connection.autocommit = False
        except dbapi_error:
            fairy.invalidate()
    fairy.close()
