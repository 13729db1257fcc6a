"""Database plumbing: the declarative base, shared column types, engines and sessions.

Services receive a ``Session`` and never commit: the web request or the task
that calls them owns the transaction (``with session_factory.begin() as s``).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Annotated, Any

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    DateTime,
    Dialect,
    Engine,
    Integer,
    MetaData,
    Numeric,
    String,
    TypeDecorator,
    create_engine,
    event,
    func,
)
from sqlalchemy.engine import make_url
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, object_session, sessionmaker
from sqlalchemy.orm import Session as Session

from crm_core.encryption.keyring import Keyring
from crm_core.encryption.types import bind_keyring

# Stable constraint names, so migrations can refer to them on every backend.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[dt.datetime]):
    """A timezone-aware UTC timestamp on every backend.

    PostgreSQL keeps ``timestamptz``; SQLite stores text without a zone, so
    values are converted to UTC on the way in and tagged UTC on the way out.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; use an aware UTC datetime")
        value = value.astimezone(dt.UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: dt.datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)


# BIGINT on PostgreSQL; INTEGER on SQLite, where only INTEGER PRIMARY KEY autoincrements.
BigId = BigInteger().with_variant(Integer(), "sqlite")

intpk = Annotated[int, mapped_column(BigId, primary_key=True)]
str40 = Annotated[str, 40]
str80 = Annotated[str, 80]
str255 = Annotated[str, 255]
money = Annotated[Decimal, mapped_column(Numeric(14, 2))]
json_doc = Annotated[dict[str, Any], mapped_column(JSON)]


def utcnow() -> dt.datetime:
    """The current time, aware, in UTC."""
    return dt.datetime.now(dt.UTC)


class Base(DeclarativeBase):
    """The declarative base of every CRM table."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {
        dt.datetime: UTCDateTime(),
        str40: String(40),
        str80: String(80),
        str255: String(255),
        str: String(255),
        dict[str, Any]: JSON(),
        list[str]: JSON(),
    }


class Timestamped:
    """``created_at`` and ``updated_at``, set by the database and by the ORM."""

    created_at: Mapped[dt.datetime] = mapped_column(
        default=utcnow, server_default=func.current_timestamp()
    )
    updated_at: Mapped[dt.datetime] = mapped_column(
        default=utcnow, onupdate=utcnow, server_default=func.current_timestamp()
    )


class Versioned:
    """A ``version`` counter, raised by one on every flush that changes the row.

    It is the row's validator for HTTP: an ETag is derived from it and ``If-Match`` is checked
    against it. Unlike ``version_id_col`` it adds no condition to the UPDATE, so writers that
    already serialize on a row lock (the workers) never fail on it; the API checks the version
    itself after locking the row. A bulk ``UPDATE`` bypasses the ORM and must raise it
    itself (``.values(..., version=Model.version + 1)``).
    """

    version: Mapped[int] = mapped_column(Integer, default=1, server_default="1")


@event.listens_for(Versioned, "before_update", propagate=True)
def _raise_version(_mapper: Any, _connection: Any, target: Versioned) -> None:
    session = object_session(target)
    if session is not None and session.is_modified(target, include_collections=False):
        target.version = (target.version or 0) + 1


def _configure_sqlite(engine: Engine) -> None:
    """Make SQLite behave: WAL, foreign keys, a busy timeout, real transactions.

    pysqlite's own transaction handling defers BEGIN and breaks SAVEPOINT, so
    it is switched off and every transaction starts with ``BEGIN IMMEDIATE``,
    which takes the write lock up front: two writers then wait for each other
    (``busy_timeout``) instead of failing on a read-to-write lock upgrade.
    """

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=15000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def make_engine(
    url: str,
    *,
    pool_size: int = 5,
    pool_timeout: float = 10.0,
    pre_ping: bool = False,
    keyring: Keyring | None = None,
    **kw: Any,
) -> Engine:
    """Create an engine for ``url`` with the settings each backend needs.

    ``keyring`` encrypts and decrypts the secret columns; without one, reading
    or writing a secret fails (``crm_core.encryption.types``).
    """
    # Errors (logged, or stored as a reason) never quote the statement's values:
    # they are personal data, e-mail bodies and addresses.
    kw.setdefault("hide_parameters", True)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        engine = create_engine(url, **kw)
        _configure_sqlite(engine)
    else:
        # Connections older than half an hour are replaced, so idle ones that a
        # firewall or the server timed out are rarely met; pre-ping is optional.
        kw.setdefault("pool_recycle", 1800)
        engine = create_engine(
            url, pool_size=pool_size, pool_timeout=pool_timeout, pool_pre_ping=pre_ping, **kw
        )
    if keyring is not None:
        bind_keyring(engine, keyring)
    return engine


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    """A session factory whose objects stay usable after commit."""
    return sessionmaker(bind=engine, expire_on_commit=False)


def check_one_of(column: str, values: Any, *, name: str | None = None) -> CheckConstraint:
    """A CHECK constraint keeping ``column`` within ``values`` (an Enum or strings)."""
    allowed = ", ".join(f"'{getattr(v, 'value', v)}'" for v in values)
    return CheckConstraint(f"{column} IN ({allowed})", name=name or f"{column}_allowed")


def dialect_insert(session: Session, table: Any) -> Any:
    """An INSERT with ``on_conflict_do_*`` for the session's backend (PostgreSQL or SQLite)."""
    from sqlalchemy.dialects import postgresql, sqlite

    name = session.get_bind().dialect.name
    if name == "postgresql":
        return postgresql.insert(table)
    if name == "sqlite":
        return sqlite.insert(table)
    raise NotImplementedError(f"upserts are implemented for PostgreSQL and SQLite, not {name}")


def insert_or_lock(
    session: Session, model: type[Any], *, key: dict[str, Any], values: dict[str, Any]
) -> tuple[Any, bool]:
    """The row of ``model`` with natural ``key``, inserted with ``values`` if missing.

    Race-safe: ``INSERT … ON CONFLICT DO NOTHING`` on the key's unique constraint,
    then the row is read with a lock (``FOR UPDATE``), so two transactions upserting
    the same key serialize on it. Returns the row and whether this call created it.
    """
    from sqlalchemy import select

    statement = (
        dialect_insert(session, model)
        .values(**key, **values)
        .on_conflict_do_nothing()
        .returning(model.id)
    )
    created = session.execute(statement).scalar() is not None
    row = session.scalars(select(model).filter_by(**key).with_for_update()).one()
    return row, created
