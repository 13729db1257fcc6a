"""A task travels through the real Redis to a real worker that writes to the real PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from celery import Celery
from sqlalchemy import select

from crm_core import migrate
from crm_core.db import make_engine, make_session_factory
from crm_core.ops.models import WorkerHeartbeat
from tests.processes import celery_worker, service_env, wait_until
from tests.services import REDIS_URL, redis_reason, scratch_postgres_database, unavailable

pytestmark = pytest.mark.slow


@pytest.fixture
def postgres_url(postgres_available: None) -> Iterator[str]:
    with scratch_postgres_database("crm_roundtrip") as url:
        migrate.upgrade(url)
        yield url


@pytest.fixture
def redis_url() -> str:
    reason = redis_reason()
    if reason:
        unavailable("Redis", reason)
    return REDIS_URL


def test_heartbeat_task_reaches_postgres_through_redis(
    postgres_url: str, redis_url: str, tmp_path: Path
) -> None:
    env = service_env(CRM_DATABASE_URL=postgres_url, CRM_BROKER_URL=redis_url)
    # A publisher of our own, configured like the platform's, so this test
    # exercises the real wire format rather than the test process's settings.
    publisher = Celery("publisher", broker=redis_url)
    publisher.config_from_object("celeryconfig")
    publisher.conf.broker_url = redis_url
    engine = make_engine(postgres_url)
    sessions = make_session_factory(engine)

    def heartbeats() -> list[WorkerHeartbeat]:
        with sessions() as session:
            return list(session.scalars(select(WorkerHeartbeat)))

    try:
        with celery_worker(env, queues="maintenance", log_path=tmp_path / "worker.log"):
            publisher.send_task("crm.maintenance.heartbeat", queue="maintenance")
            rows = wait_until(heartbeats, timeout=60, what="the worker's heartbeat row")
    finally:
        engine.dispose()
    assert len(rows) == 1
    assert rows[0].hostname.startswith("test-")
    assert rows[0].beats == 1
