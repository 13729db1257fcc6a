"""The web intake's way into the inbox: a request stored and committed in one round trip.

Every accepted webhook is one ``INSERT … ON CONFLICT DO NOTHING RETURNING``
(``services.insert_new_event``) that must be committed before the sender is
answered. On PostgreSQL through psycopg or psycopg2, ``Inbox`` runs it in
autocommit on the pooled driver connection. PostgreSQL commits a statement of
its own before it answers it, so the event is as durable as after an explicit
``COMMIT``, in one round trip instead of three (``BEGIN``, the ``INSERT``,
``COMMIT``) and without SQLAlchemy's per-statement work, which together were a
quarter of the intake's CPU per request (``docs/performance.md``). The statement
is the one SQLAlchemy compiles for the table, so the two paths cannot drift.

On any other backend (SQLite in development and in unit tests) ``store`` is
``services.store_event`` in a transaction. Errors of the driver reach the caller
as SQLAlchemy's ``DBAPIError``, whichever path raised them.
"""

from __future__ import annotations

import json
from typing import Any, Unpack

from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import PoolProxiedConnection

from crm_core.ingestion.services import (
    EXISTING_EVENT,
    NewEvent,
    SourceCredentials,
    StoredEvent,
    insert_new_event,
    new_event_values,
    source_credentials,
    store_event,
)

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
