"""PostgreSQL restarted while webhooks pour in: 503 while it is down, nothing lost, nothing doubled.

Real processes on a private PostgreSQL (a cluster of the test's own, stopped
and started again; the shared server is never touched): gunicorn with two
workers, a Celery worker with beat, and senders that post again whatever was
not acknowledged, as a webhook provider does.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
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
from tests.integration.conftest import Broker
from tests.keyring import TEST_KEYRING
from tests.private_postgres import private_postgres
from tests.processes import celery_worker, service_env, wait_until, web_app
from tests.signed import signed_headers

pytestmark = [pytest.mark.slow, pytest.mark.faults("PostgreSQL restarted during intake")]
WEBHOOKS = 400
SENDERS = 6


class Senders:
    """Post webhook ``n`` until it is acknowledged (202, or 200 for a duplicate); count answers."""

    def __init__(self, base: str, secret: str) -> None:
        self.base, self.secret = base, secret
        self.answers: Counter[int] = Counter()
        self.acknowledged = 0
        self.lock = threading.Lock()

    def post_until_acknowledged(self, n: int) -> int:
        body = json.dumps({"email": f"lead{n % 300}@example.com", "full_name": f"Lead {n}"})
        while True:
            headers = signed_headers(self.secret, body.encode(), msg_id=f"pg-{n}")
            try:
                status = requests.post(
                    f"{self.base}/webhooks/forms/leads", data=body, headers=headers, timeout=30
                ).status_code
            except requests.ConnectionError:
                status = 0
            with self.lock:
                self.answers[status] += 1
                if status in (200, 202):
                    self.acknowledged += 1
            if status in (200, 202):
                return status
            time.sleep(0.2)


def test_webhooks_get_503_while_postgres_is_down_and_none_is_lost(
    broker: Broker, tmp_path: Path
) -> None:
    with private_postgres() as postgres:
        migrate.upgrade(postgres.url)
        engine = make_engine(postgres.url, keyring=TEST_KEYRING, pre_ping=True)
        sessions = make_session_factory(engine)
        with sessions.begin() as session:
            _, secret = services.create_source(session, name="forms")
        env = service_env(
            CRM_DATABASE_URL=postgres.url,
            **broker.env,
            CRM_RATELIMIT_URL="memory://",
            CRM_SECRET_KEY="pg-restart-secret",
            CRM_VAR_DIR=str(tmp_path),
            CRM_TASK_TIME_LIMIT_SECONDS="8",
            CRM_SWEEP_INTERVAL_SECONDS="1",
            CRM_SWEEP_GRACE_SECONDS="2",
            CRM_SWEEP_REPUBLISH_SECONDS="3",
        )
        with (
            web_app(env, workers=2) as base,
            celery_worker(
                env, queues="ingest,maintenance", beat=True, log_path=tmp_path / "worker.log"
            ),
        ):
            senders = Senders(base, secret)
            with ThreadPoolExecutor(max_workers=SENDERS) as pool:
                posted = pool.map(senders.post_until_acknowledged, range(WEBHOOKS))
                wait_until(lambda: senders.acknowledged >= 100, timeout=60, what="100 acknowledged")
                postgres.stop()
                acknowledged_at_stop = senders.acknowledged
                time.sleep(3)
                postgres.start()
                answers = Counter(posted)
            assert acknowledged_at_stop < WEBHOOKS, "every webhook went in before the restart"

            def all_processed() -> bool:
                with sessions() as session:
                    statuses = session.scalars(select(InboxEvent.status)).all()
                return len(statuses) == WEBHOOKS and set(statuses) == {EventStatus.PROCESSED}

            wait_until(all_processed, timeout=180, what="every event processed", interval=0.5)

        # While the database was down the answer was 503 (post again), never a 500.
        assert senders.answers[503] > 0
        assert set(senders.answers) <= {200, 202, 503}, senders.answers
        assert answers[202] + answers[200] == WEBHOOKS
        with sessions() as session:
            webhook_ids = session.scalars(select(InboxEvent.webhook_id)).all()
            per_event = session.execute(
                select(m.Activity.event_id, func.count())
                .where(m.Activity.type == "lead_captured")
                .group_by(m.Activity.event_id)
            ).all()
            contacts = session.scalar(select(func.count()).select_from(m.Contact))
        assert sorted(webhook_ids) == sorted(f"pg-{n}" for n in range(WEBHOOKS))
        assert sorted(count for _, count in per_event) == [1] * WEBHOOKS
        assert contacts == 300
        engine.dispose()
