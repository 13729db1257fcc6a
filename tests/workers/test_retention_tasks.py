"""crm.maintenance.prune_inbox: beat's retention, in bounded batches, run in-process."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Engine, select

from crm_core.config import Settings
from crm_core.db import make_session_factory
from crm_core.ingestion.models import EventStatus, InboxEvent, Source
from workers import db as worker_db
from workers import retention_tasks


def _seed(engine: Engine, *, old: int, recent: int) -> None:
    now = dt.datetime.now(dt.UTC)
    with make_session_factory(engine).begin() as session:
        source = Source(name="shop")
        session.add(source)
        session.flush()
        for n in range(old + recent):
            session.add(
                InboxEvent(
                    source_id=source.id,
                    kind="leads",
                    webhook_id=f"w{n}",
                    content_type="application/json",
                    headers={},
                    body=b'{"email": "a@b.example"}',
                    status=EventStatus.PROCESSED,
                    received_at=now - dt.timedelta(days=40 if n < old else 1),
                )
            )


def test_the_task_drops_old_bodies_batch_by_batch(committed_db: Engine, database_url: str) -> None:
    _seed(committed_db, old=5, recent=2)
    settings = Settings(database_url=database_url, inbox_retention_days=30, retention_batch_size=2)
    with worker_db.injected(settings=settings, sessions=make_session_factory(committed_db)):
        assert retention_tasks.prune_inbox() == 5
        assert retention_tasks.prune_inbox() == 0
    with make_session_factory(committed_db)() as session:
        removed = session.scalars(select(InboxEvent.body_removed_by).order_by(InboxEvent.id))
        assert list(removed) == ["retention"] * 5 + [None] * 2


def test_zero_days_keeps_everything(committed_db: Engine, database_url: str) -> None:
    _seed(committed_db, old=1, recent=0)
    settings = Settings(database_url=database_url, inbox_retention_days=0)
    with worker_db.injected(settings=settings, sessions=make_session_factory(committed_db)):
        assert retention_tasks.prune_inbox() == 0
