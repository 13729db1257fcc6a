"""With the broker down, webhooks still get 202; once it is back, every event is processed once.

Real processes: gunicorn, a broker of the test's own that goes down losing the
messages it held (a private redis-server killed, or a RabbitMQ virtual host
deleted) and comes back, and a Celery worker with beat running the sweeper.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests
from sqlalchemy import func, select

from crm_core import migrate
from crm_core.db import make_engine, make_session_factory
from crm_core.ingestion import services
from crm_core.ingestion.models import EventStatus, InboxEvent
from crm_core.models import Activity
from tests.integration.conftest import LosableBroker
from tests.keyring import TEST_KEYRING
from tests.processes import celery_worker, service_env, wait_until, web_app
from tests.services import scratch_postgres_database
from tests.signed import signed_headers

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.slow,
    pytest.mark.faults("broker down during intake, losing what it held"),
]


@pytest.fixture
def database(postgres_available: None) -> Iterator[str]:
    with scratch_postgres_database("crm_intake_e2e") as url:
        migrate.upgrade(url)
        yield url


def _post(base: str, secret: str, n: int) -> requests.Response:
    body = f'{{"email": "lead{n}@example.com"}}'.encode()
    headers = signed_headers(secret, body, msg_id=f"msg_{n}")
    return requests.post(f"{base}/webhooks/forms/leads", data=body, headers=headers, timeout=30)


def test_requests_survive_a_dead_broker_and_are_processed_once_it_returns(
    database: str, losable_broker: LosableBroker, tmp_path
) -> None:
    engine = make_engine(database, keyring=TEST_KEYRING)
    sessions = make_session_factory(engine)
    with sessions.begin() as session:
        _, secret = services.create_source(session, name="forms")
    env = service_env(
        CRM_DATABASE_URL=database,
        CRM_BROKER_URL=losable_broker.url,
        CRM_RATELIMIT_URL="memory://",
        CRM_VAR_DIR=str(tmp_path),
        CRM_SWEEP_INTERVAL_SECONDS="1",
        CRM_SWEEP_GRACE_SECONDS="1",
    )
    with web_app(env) as base:
        # Broker up, but no worker yet: the messages wait in the broker...
        assert [_post(base, secret, n).status_code for n in range(5)] == [202] * 5
        # ...and are lost with it. Then five more arrive while it is down.
        losable_broker.stop()
        assert [_post(base, secret, n).status_code for n in range(5, 10)] == [202] * 5
        assert _post(base, secret, 3).status_code == 200
        losable_broker.start()
        with celery_worker(env, queues="ingest,maintenance", beat=True):

            def all_processed() -> bool:
                with sessions() as session:
                    statuses = session.scalars(select(InboxEvent.status)).all()
                return len(statuses) == 10 and set(statuses) == {EventStatus.PROCESSED}

            wait_until(all_processed, timeout=120, what="ten processed events", interval=0.5)
            assert _post(base, secret, 10).status_code == 202
            wait_until(lambda: _count_captured(sessions) == 11, timeout=60, what="the 11th event")
    with sessions() as session:
        events = session.scalars(select(InboxEvent)).all()
        assert len(events) == 11
        assert {(e.status, e.attempts) for e in events} == {(EventStatus.PROCESSED, 1)}
        assert all(
            {link.entity_type for link in e.entities} == {"customer", "contact", "activity"}
            for e in events
        )
    assert _count_captured(sessions) == 11
    engine.dispose()


def _count_captured(sessions) -> int:  # type: ignore[no-untyped-def]
    """Leads captured: one ``lead_captured`` Activity per event processed."""
    with sessions() as session:
        query = select(func.count()).where(Activity.type == "lead_captured")
        return session.scalar(query) or 0
