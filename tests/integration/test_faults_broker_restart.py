"""The broker restarted while workers process a backlog: every event processed once.

The broker is killed with SIGKILL and started again: a private Redis that keeps nothing (every
message it held is lost), or a private RabbitMQ node booted again on its data (its quorum
queues keep what they confirmed; the deliveries the workers had not acknowledged come again).
Every connection to it is cut. The workers reconnect, the sweeper republishes what the database
still holds as unprocessed, and each event takes effect once.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from sqlalchemy import func, select

from crm_core import migrate
from crm_core import models as m
from crm_core.db import make_engine, make_session_factory
from crm_core.ingestion import services
from crm_core.ingestion.models import EventStatus, InboxEvent
from tests.integration.conftest import LosableBroker
from tests.keyring import TEST_KEYRING
from tests.processes import celery_worker, service_env, wait_until, web_app
from tests.services import scratch_postgres_database
from tests.signed import signed_headers

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.slow,
    pytest.mark.faults("broker restarted during processing"),
]
EVENTS = 800


@pytest.fixture
def database(postgres_available: None) -> Iterator[str]:
    with scratch_postgres_database("crm_broker_restart") as url:
        migrate.upgrade(url)
        yield url


def test_a_broker_restart_mid_backlog_loses_and_doubles_nothing(
    database: str, restartable_broker: LosableBroker, tmp_path: Path
) -> None:
    engine = make_engine(database, keyring=TEST_KEYRING)
    sessions = make_session_factory(engine)
    with sessions.begin() as session:
        _, secret = services.create_source(session, name="forms")
    env = service_env(
        CRM_DATABASE_URL=database,
        **restartable_broker.env,
        CRM_RATELIMIT_URL="memory://",
        CRM_SECRET_KEY="broker-restart-secret",
        CRM_VAR_DIR=str(tmp_path),
        CRM_TASK_TIME_LIMIT_SECONDS="8",
        CRM_SWEEP_INTERVAL_SECONDS="1",
        CRM_SWEEP_GRACE_SECONDS="2",
        CRM_SWEEP_REPUBLISH_SECONDS="3",
    )

    def post(n: int) -> int:
        body = json.dumps({"email": f"lead{n % 600}@example.com"}).encode()
        headers = signed_headers(secret, body, msg_id=f"restart-{n}")
        return requests.post(
            f"{base}/webhooks/forms/leads", data=body, headers=headers, timeout=30
        ).status_code

    def processed() -> int:
        with sessions() as session:
            query = select(func.count()).where(InboxEvent.status == EventStatus.PROCESSED)
            return session.scalar(query) or 0

    with web_app(env) as base, ThreadPoolExecutor(max_workers=8) as pool:
        assert set(pool.map(post, range(EVENTS))) == {202}
    with (
        celery_worker(env, queues="ingest", log_path=tmp_path / "w1.log"),
        celery_worker(env, queues="ingest,maintenance", beat=True, log_path=tmp_path / "w2.log"),
    ):
        wait_until(lambda: processed() >= 40, timeout=120, what="40 processed", interval=0.05)
        restartable_broker.restart()
        assert processed() < EVENTS, "the backlog drained before the broker restarted"
        wait_until(
            lambda: processed() == EVENTS, timeout=240, what="every event processed", interval=0.5
        )
    with sessions() as session:
        assert set(session.scalars(select(InboxEvent.status))) == {EventStatus.PROCESSED}
        per_event = session.execute(
            select(m.Activity.event_id, func.count())
            .where(m.Activity.type == "lead_captured")
            .group_by(m.Activity.event_id)
        ).all()
        contacts = session.scalar(select(func.count()).select_from(m.Contact))
    assert sorted(count for _, count in per_event) == [1] * EVENTS
    assert contacts == 600
    engine.dispose()
