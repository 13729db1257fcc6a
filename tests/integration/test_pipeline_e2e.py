"""Leads end to end: gunicorn, a real broker (Redis and RabbitMQ), real worker processes,
real PostgreSQL.

Exactly once in effect, whatever the concurrency, the duplicates, the replays
or a worker killed with SIGKILL in the middle of its work.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from celery import Celery
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

import celeryconfig
from crm_core import migrate
from crm_core import models as m
from crm_core.db import make_engine, make_session_factory
from crm_core.ingestion import inbox, services
from crm_core.ingestion.models import EventStatus, InboxEvent
from tests.integration.conftest import Broker
from tests.keyring import TEST_KEYRING
from tests.processes import (
    REPO,
    celery_worker,
    kill_group,
    service_env,
    wait_until,
    web_app,
)
from tests.services import scratch_postgres_database
from tests.signed import signed_headers

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

# Short limits, so a claim left by a killed worker is released within seconds.
FAST_RECOVERY = {
    "CRM_TASK_TIME_LIMIT_SECONDS": "8",
    "CRM_SWEEP_INTERVAL_SECONDS": "1",
    "CRM_SWEEP_GRACE_SECONDS": "2",
    "CRM_SWEEP_REPUBLISH_SECONDS": "3",
}


@dataclass
class Platform:
    env: dict[str, str]
    broker: Broker
    sessions: sessionmaker[Session]
    secret: str
    tmp: Path

    def count(self, model: type, *where: object) -> int:
        with self.sessions() as session:
            return session.scalar(select(func.count()).select_from(model).where(*where)) or 0

    def statuses(self) -> list[str]:
        with self.sessions() as session:
            return list(session.scalars(select(InboxEvent.status)))

    def wait_all_processed(self, expected: int, *, timeout: float = 180) -> None:
        def done() -> bool:
            statuses = self.statuses()
            return len(statuses) == expected and set(statuses) == {EventStatus.PROCESSED}

        wait_until(done, timeout=timeout, what=f"{expected} processed events", interval=0.5)


@pytest.fixture
def platform(postgres_available: None, broker: Broker, tmp_path: Path) -> Iterator[Platform]:
    with scratch_postgres_database("crm_e2e") as url:
        migrate.upgrade(url)
        engine = make_engine(url, keyring=TEST_KEYRING)
        with make_session_factory(engine).begin() as session:
            _, secret = services.create_source(session, name="forms")
        env = service_env(
            CRM_DATABASE_URL=url,
            **broker.env,
            CRM_RATELIMIT_URL="memory://",
            CRM_SECRET_KEY="e2e-secret",
            CRM_VAR_DIR=str(tmp_path),
            **FAST_RECOVERY,
        )
        yield Platform(env, broker, make_session_factory(engine), secret, tmp_path)
        engine.dispose()


def lead(n: int) -> dict[str, str]:
    """200 leads over 150 addresses: the first 50 addresses come twice."""
    person = n % 150
    return {
        "email": f"Person{person}@Company{person % 40}.example",
        "full_name": f"Person {person} Example",
        "company": f"Company {person % 40}",
        "job_title": "Buyer" if n < 150 else "Head of Buying",
    }


def post_all(base: str, secret: str, leads: list[dict[str, str]]) -> list[int]:
    def post(n: int) -> int:
        body = json.dumps(leads[n]).encode()
        headers = signed_headers(secret, body, msg_id=f"lead-{n}")
        response = requests.post(
            f"{base}/webhooks/forms/leads", data=body, headers=headers, timeout=30
        )
        assert response.status_code == 202, response.text
        return int(response.json()["event_id"])

    with ThreadPoolExecutor(max_workers=16) as pool:
        return list(pool.map(post, range(len(leads))))


def table_counts(platform: Platform) -> dict[str, int]:
    return {
        table.name: platform.count(table)
        for table in m.metadata.sorted_tables
        if table.name not in ("worker_heartbeats",)
    }


def test_two_workers_make_one_contact_per_address_and_replays_change_nothing(
    platform: Platform,
) -> None:
    leads = [lead(n) for n in range(200)]
    with web_app(platform.env) as base:
        log = platform.tmp
        with (
            celery_worker(platform.env, queues="ingest", log_path=log / "w1.log"),
            celery_worker(
                platform.env, queues="ingest,maintenance", beat=True, log_path=log / "w2.log"
            ),
        ):
            event_ids = post_all(base, platform.secret, leads)
            assert len(set(event_ids)) == 200
            platform.wait_all_processed(200)
            assert platform.count(m.Contact) == 150
            assert platform.count(m.Customer, m.Customer.kind == "company") == 40
            primaries = select(m.Contact.customer_id).where(m.Contact.is_primary)
            with platform.sessions() as session:
                primary_of = list(session.scalars(primaries))
            assert sorted(primary_of) == sorted(set(primary_of))
            assert len(primary_of) == platform.count(m.Customer)
            assert platform.count(m.Activity, m.Activity.type == "lead_captured") == 200
            # The second sighting of an address merged into the first: whichever came
            # first set the title, and the other never overwrote it.
            with platform.sessions() as session:
                titles = session.scalars(
                    select(m.Contact.job_title).where(m.Contact.email_normalized.like("person1@%"))
                ).all()
            assert len(titles) == 1
            assert titles[0] in ("Buyer", "Head of Buying")

            before = table_counts(platform)
            replay = subprocess.run(
                [sys.executable, "-m", "crm_cli", "events", "replay", "--status", "processed"],
                cwd=REPO, env=platform.env, capture_output=True, text=True, check=False,
            )  # fmt: skip
            assert replay.returncode == 0, replay.stderr
            platform.wait_all_processed(200)
            with platform.sessions() as session:
                attempts = set(session.scalars(select(InboxEvent.attempts)))
            assert attempts == {1}  # each replayed once, counted afresh
            after = table_counts(platform)
            # The only new rows say who replayed each event (the audit log).
            audited = after.pop("audit_entries") - before.pop("audit_entries")
            assert audited == 200
            assert after == before


@pytest.mark.faults("worker kill -9 mid-batch")
def test_a_worker_killed_mid_batch_leaves_every_event_processed_once(platform: Platform) -> None:
    leads = [lead(n) for n in range(300)]
    with web_app(platform.env) as base:
        post_all(base, platform.secret, leads)
        with celery_worker(
            platform.env, queues="ingest", log_path=platform.tmp / "victim.log"
        ) as victim:
            wait_until(
                lambda: (
                    platform.count(InboxEvent, InboxEvent.status == EventStatus.PROCESSED) >= 40
                ),
                timeout=120,
                what="the first worker to get going",
                interval=0.05,
            )
            kill_group(victim)
        done_before = platform.count(InboxEvent, InboxEvent.status == EventStatus.PROCESSED)
        assert done_before < 300, "the worker finished before it could be killed"
        with celery_worker(
            platform.env, queues="ingest,maintenance", beat=True, log_path=platform.tmp / "heir.log"
        ):
            platform.wait_all_processed(300, timeout=240)
    # Exactly once in effect: one lead_captured per event, one contact per address.
    assert platform.count(m.Activity, m.Activity.type == "lead_captured") == 300
    assert platform.count(m.Contact) == 150
    with platform.sessions() as session:
        per_event = session.execute(
            select(m.Activity.event_id, func.count())
            .group_by(m.Activity.event_id)
            .having(func.count() > 1)
        ).all()
    assert per_event == []


def test_two_workers_capturing_overlapping_batches_make_one_contact_per_address(
    platform: Platform,
) -> None:
    # Bursts as the web layer publishes them (many ids per message), striped so that every
    # batch holds addresses every other batch holds too: up to four batches at once lock,
    # wait on and follow each other, or fall back to one by one, and still end exactly once.
    leads = [lead(n) for n in range(400)]
    with platform.sessions.begin() as session:
        source = session.scalars(select(m.Source)).one()
        ids = [
            inbox.store_event(
                session, source_id=source.id, kind="leads", webhook_id=f"burst-{n}",
                content_type="application/json", body=json.dumps(body).encode(),
            ).id
            for n, body in enumerate(leads)
        ]  # fmt: skip
    publisher = Celery(broker=platform.broker.url)
    # The queues and transport options the workers use on this broker.
    publisher.conf.task_queues = celeryconfig.queues(platform.broker.url)
    publisher.conf.broker_transport_options = celeryconfig.transport_options(
        platform.broker.url, key_prefix=platform.broker.key_prefix
    )
    log = platform.tmp
    with (
        celery_worker(platform.env, queues="ingest", log_path=log / "w1.log"),
        celery_worker(platform.env, queues="ingest", log_path=log / "w2.log"),
    ):
        for stripe in range(8):
            publisher.send_task("crm.ingest.process_events", args=[ids[stripe::8]], queue="ingest")
        platform.wait_all_processed(400)
    assert platform.count(m.Contact) == 150
    assert platform.count(m.Customer, m.Customer.kind == "company") == 40
    with platform.sessions() as session:
        primary_of = list(
            session.scalars(select(m.Contact.customer_id).where(m.Contact.is_primary))
        )
        per_event = session.execute(
            select(m.Activity.event_id, func.count())
            .where(m.Activity.type == "lead_captured")
            .group_by(m.Activity.event_id)
        ).all()
        moments = session.scalar(
            select(func.count(func.distinct(m.Activity.occurred_at))).where(
                m.Activity.type == "lead_captured"
            )
        )
    assert sorted(primary_of) == sorted(set(primary_of))
    assert len(primary_of) == platform.count(m.Customer)
    assert sorted(count for _, count in per_event) == [1] * 400
    # A batch captures its leads at one moment; one by one, every lead has its own.
    fell_back = sum(
        (log / name).read_text().count("goes one by one") for name in ("w1.log", "w2.log")
    )
    assert moments is not None
    assert moments <= 8 + 50 * fell_back
    assert fell_back < 8, "no batch went through as a batch"
