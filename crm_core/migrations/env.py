"""Alembic environment: migrates the database named by the settings or by the caller.

On SQLite the migrations run with foreign keys off. Batch mode rebuilds a
table (create a copy, DROP the old one, rename the copy), and with foreign keys
on, that DROP deletes the old rows first: ON DELETE CASCADE / SET NULL then
empty or detach every row pointing at them, and RESTRICT stops the upgrade
half-way. So, as SQLite documents for schema changes
(https://www.sqlite.org/lang_altertable.html), foreign keys are turned off
outside any transaction, every revision runs in one transaction, and that
transaction commits only if ``PRAGMA foreign_key_check`` finds no row pointing
at a missing one; foreign keys are turned back on afterwards.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from alembic import context
from sqlalchemy import Connection

from crm_core.config import get_settings
from crm_core.db import make_engine
from crm_core.migrate import MigrationError
from crm_core.models import metadata

config = context.config

# How many of the rows PRAGMA foreign_key_check reports are named in the error.
_NAMED_VIOLATIONS = 5


def run_migrations(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        # SQLite cannot ALTER most things; batch mode recreates tables instead.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        compare_server_default=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def _pragma(dbapi_connection: Any, statement: str) -> Any:
    """Run a PRAGMA on the driver's connection, below SQLAlchemy's transaction handling."""
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(statement)
        row = cursor.fetchone()
    finally:
        cursor.close()
    return row[0] if row else None


@contextmanager
def _foreign_keys_off(connection: Connection) -> Iterator[None]:
    """Foreign keys off on ``connection`` for the block, back to what they were after.

    The PRAGMA is a no-op inside a transaction, and SQLAlchemy would open one
    (``BEGIN IMMEDIATE``, see ``crm_core.db``) before running it, so it goes to
    the driver's connection while none is open.
    """
    dbapi_connection = connection.connection.dbapi_connection
    if connection.in_transaction() or getattr(dbapi_connection, "in_transaction", False):
        raise MigrationError(
            "SQLite migrations need a connection outside any transaction, so that foreign "
            "keys can be turned off for them; commit or roll back before migrating"
        )
    was_on = bool(_pragma(dbapi_connection, "PRAGMA foreign_keys"))
    _pragma(dbapi_connection, "PRAGMA foreign_keys=OFF")
    try:
        if _pragma(dbapi_connection, "PRAGMA foreign_keys"):
            raise MigrationError("SQLite did not turn foreign keys off; nothing was migrated")
        yield
    finally:
        if was_on:
            _pragma(dbapi_connection, "PRAGMA foreign_keys=ON")


def _check_foreign_keys(connection: Connection) -> None:
    """Fail (and so roll back) if any row points at a row that does not exist."""
    found = connection.exec_driver_sql("PRAGMA foreign_key_check").all()
    if not found:
        return
    named = ", ".join(
        f"{table} row {rowid} -> {parent}" for table, rowid, parent, _ in found[:_NAMED_VIOLATIONS]
    )
    more = f" and {len(found) - _NAMED_VIOLATIONS} more" if len(found) > _NAMED_VIOLATIONS else ""
    raise MigrationError(
        f"the migration would leave {len(found)} reference(s) to rows that do not exist "
        f"({named}{more}); it was rolled back and the database is unchanged"
    )


def migrate(connection: Connection) -> None:
    """Run the migrations on ``connection`` and commit them."""
    if connection.dialect.name != "sqlite":
        run_migrations(connection)
        return
    with _foreign_keys_off(connection), connection.begin():
        run_migrations(connection)
        _check_foreign_keys(connection)


def run_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        migrate(connection)
        return
    url = config.get_main_option("sqlalchemy.url") or get_settings().resolved_database_url()
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            migrate(conn)
            conn.commit()
    finally:
        engine.dispose()


if context.is_offline_mode():
    context.configure(
        url=config.get_main_option("sqlalchemy.url") or get_settings().resolved_database_url(),
        target_metadata=metadata,
        literal_binds=True,
    )
    with context.begin_transaction():
        context.run_migrations()
else:
    run_online()
