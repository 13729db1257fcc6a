"""The intake's inbox writer: committed, idempotent, and the same rows as ``store_event``."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, select, text
from sqlalchemy.exc import DBAPIError, IntegrityError

from crm_core.db import make_engine, make_session_factory
from crm_core.errors import FieldError
from crm_core.ingestion import services
from crm_core.ingestion.inbox import Inbox, NewEvent, StoredEvent, store_event
from crm_core.ingestion.models import EventStatus, InboxEvent
from tests.keyring import TEST_KEYRING

BODY = b'{"email": "a@example.com"}'


@pytest.fixture
def pool_of_one(postgres_url: str) -> Iterator[Engine]:
    """An engine whose pool holds one connection, so every test step reuses it."""
    engine = make_engine(postgres_url, pool_size=1, max_overflow=0, keyring=TEST_KEYRING)
    yield engine
    with engine.begin() as conn:
        for table in ("inbox_events", "source_secrets", "sources"):
            conn.execute(text(f"DELETE FROM {table}"))
    engine.dispose()


def _source(engine: Engine, name: str = "shop") -> int:
    with make_session_factory(engine).begin() as session:
        source, _ = services.create_source(session, name=name)
        return source.id


def _event(source_id: int, webhook_id: str, **kw: Any) -> NewEvent:
    return NewEvent(
        source_id=source_id,
        kind="leads",
        webhook_id=webhook_id,
        content_type="application/json",
        body=BODY,
        headers={"webhook-timestamp": "1", "user-agent": "tests"},
        **kw,
    )


def _store(inbox: Inbox, source_id: int, webhook_id: str, **kw: Any) -> StoredEvent:
    return inbox.store(**_event(source_id, webhook_id, **kw))


def _rows(engine: Engine) -> list[InboxEvent]:
    with make_session_factory(engine)() as session:
        return list(session.scalars(select(InboxEvent).order_by(InboxEvent.id)))


def test_store_commits_once_per_webhook_id(committed_db: Engine) -> None:
    inbox = Inbox(committed_db)
    source_id = _source(committed_db)
    first = _store(inbox, source_id, "msg_1")
    again = _store(inbox, source_id, "msg_1")
    assert (first.created, again.created) == (True, False)
    assert again.id == first.id
    # Committed: a separate session sees it.
    [row] = _rows(committed_db)
    assert (row.id, row.webhook_id, row.body, row.status) == (first.id, "msg_1", BODY, "received")
    assert row.headers == {"webhook-timestamp": "1", "user-agent": "tests"}
    assert row.errors is None


def test_an_invalid_request_is_stored_with_its_errors(committed_db: Engine) -> None:
    inbox = Inbox(committed_db)
    source_id = _source(committed_db)
    errors = [FieldError(loc=("email",), msg="not an address")]
    stored = _store(inbox, source_id, "msg_bad", errors=errors)
    assert stored.status == EventStatus.INVALID
    assert stored.errors == [e.as_dict() for e in errors]
    again = _store(inbox, source_id, "msg_bad")
    assert (again.id, again.status, again.errors) == (stored.id, "invalid", stored.errors)


def test_postgresql_takes_the_direct_path_and_writes_what_store_event_writes(
    postgres_committed: Engine,
) -> None:
    inbox = Inbox(postgres_committed)
    assert inbox.direct
    source_id = _source(postgres_committed)
    errors = [FieldError(loc=("phone",), msg="too short")]
    for webhook_id, kw in (("direct_ok", {}), ("direct_bad", {"errors": errors})):
        _store(inbox, source_id, webhook_id, **kw)
    with postgres_committed.begin() as conn:
        for webhook_id, kw in (("orm_ok", {}), ("orm_bad", {"errors": errors})):
            store_event(conn, **_event(source_id, webhook_id, **kw))
    with postgres_committed.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT webhook_id, kind, content_type, headers::text, body, status, attempts,"
                " errors::text, error, received_at IS NOT NULL FROM inbox_events"
                " ORDER BY webhook_id"
            )
        ).all()
    by_id = {row[0]: row[1:] for row in rows}
    assert by_id["direct_ok"] == by_id["orm_ok"]
    assert by_id["direct_bad"] == by_id["orm_bad"]


def test_connections_go_back_to_the_pool_out_of_autocommit(pool_of_one: Engine) -> None:
    engine = pool_of_one
    inbox = Inbox(engine)
    _store(inbox, _source(engine), "msg_pool")
    with pytest.raises(IntegrityError):
        _store(inbox, 999_999_999, "msg_no_source")  # no such source: a foreign-key error
    fairy = engine.raw_connection()
    try:
        assert fairy.dbapi_connection is not None
        assert fairy.dbapi_connection.autocommit is False
    finally:
        fairy.close()
    # A session on that one pooled connection still rolls back what it does not commit.
    with make_session_factory(engine)() as session:
        session.execute(text("DELETE FROM inbox_events"))
        session.rollback()
    assert [row.webhook_id for row in _rows(engine)] == ["msg_pool"]


def test_a_dropped_connection_is_a_dbapi_error_and_the_next_store_reconnects(
    pool_of_one: Engine, postgres_url: str
) -> None:
    engine = pool_of_one
    inbox = Inbox(engine)
    source_id = _source(engine)
    _store(inbox, source_id, "before")
    with engine.connect() as conn:
        backend = conn.execute(text("SELECT pg_backend_pid()")).scalar_one()
    killer = make_engine(postgres_url)
    with killer.connect() as conn:
        conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": backend})
    killer.dispose()
    with pytest.raises(DBAPIError) as caught:
        _store(inbox, source_id, "during")
    assert caught.value.connection_invalidated
    assert _store(inbox, source_id, "after").created
    assert [row.webhook_id for row in _rows(engine)] == ["before", "after"]


def test_racing_stores_of_one_webhook_id_make_one_event(postgres_committed: Engine) -> None:
    inbox = Inbox(postgres_committed)
    source_id = _source(postgres_committed)
    results: list[StoredEvent] = []
    start = threading.Barrier(5)

    def store() -> None:
        start.wait()
        results.append(_store(inbox, source_id, "msg_race"))

    threads = [threading.Thread(target=store) for _ in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len({r.id for r in results}) == 1
    assert sorted(r.created for r in results) == [False] * 4 + [True]
    assert len(_rows(postgres_committed)) == 1
