"""Campaign sends through real workers under faults: at most one message per recipient.

* ``kill -9`` of the worker (and its pool: threads, as the Procfile's
  ``sender`` runs, and prefork) in the middle of a 500-recipient send, then
  a restart of the broker that loses every queued message (a Redis that
  keeps nothing, or a RabbitMQ virtual host deleted and made again): a new
  worker finishes the campaign from the database alone; the SMTP server
  holds at most one message per recipient, and sent + unknown = 500.
* The same campaign through the HTTP e-mail API backend, on threads, without faults: 500
  requests, each with its own idempotency key, sent = 500, unknown = 0.
* Two workers, each with its own beat, for a minute: a campaign due now, one
  due in 20 s and one recurring every minute each start once per run.
"""

from __future__ import annotations

import datetime as dt
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from crm_core import migrate
from crm_core.campaigns import services
from crm_core.campaigns.models import CampaignSend
from crm_core.customers.models import Contact, Customer
from crm_core.db import make_engine, make_session_factory, utcnow
from tests.integration.conftest import LosableBroker
from tests.mail_api_server import running_mail_api
from tests.processes import celery_worker, kill_group, service_env, start_redis, stop, wait_until
from tests.services import free_port, scratch_postgres_database
from tests.smtp_server import running_smtp_server

pytestmark = pytest.mark.slow
RECIPIENTS = 500


@pytest.fixture
def database(postgres_available: None) -> Iterator[tuple[str, sessionmaker[Session]]]:
    with scratch_postgres_database("crm_campaign_faults") as url:
        migrate.upgrade(url)
        engine = make_engine(url)
        yield url, make_session_factory(engine)
        engine.dispose()


def add_contacts(sessions: sessionmaker[Session], count: int) -> None:
    with sessions.begin() as session:
        customer = Customer(name="Many Co", name_key="many co", kind="company")
        session.add(customer)
        session.flush()
        session.add_all(
            Contact(customer_id=customer.id, first_name=f"R{n}", email=f"r{n}@example.com",
                    email_normalized=f"r{n}@example.com")
            for n in range(count)
        )  # fmt: skip


def create(sessions: sessionmaker[Session], code: str, **schedule: object) -> int:
    with sessions.begin() as session:
        campaign = services.create_campaign(
            session, name=code, code=code, subject=f"{code}: hi {{{{ contact.first_name }}}}",
            text="Hello",
        )  # fmt: skip
        if schedule:
            services.schedule(session, campaign_id=campaign.id, **schedule)  # type: ignore[arg-type]
        else:
            services.send_now(session, campaign_id=campaign.id)
        return campaign.id


def view(sessions: sessionmaker[Session], campaign_id: int) -> services.CampaignView:
    with sessions() as session:
        return services.get_campaign_view(session, campaign_id=campaign_id)


def env_for(url: str, broker_url: str, tmp_path: Path, **extra: str) -> dict[str, str]:
    return service_env(
        CRM_DATABASE_URL=url,
        CRM_BROKER_URL=broker_url,
        CRM_SECRET_KEY="campaign-fault-secret",
        CRM_PUBLIC_URL="https://crm.example.com",
        CRM_VAR_DIR=str(tmp_path),
        **extra,
    )


# The Procfile's ``sender`` runs the campaigns queue on threads; prefork is the other pool,
# on Redis only (the pool makes no difference to the broker, and CI time is counted).
@pytest.mark.parametrize(
    ("losable_broker", "pool"),
    [("redis", "threads"), ("redis", "prefork"), ("rabbitmq", "threads")],
    indirect=["losable_broker"],
)
@pytest.mark.faults("sender kill -9 and broker restart mid-campaign")
def test_kill_9_and_a_broker_restart_mid_send_never_send_twice(
    database: tuple[str, sessionmaker[Session]],
    losable_broker: LosableBroker,
    tmp_path: Path,
    pool: str,
) -> None:
    url, sessions = database
    add_contacts(sessions, RECIPIENTS)
    campaign_id = create(sessions, "faults")
    with running_smtp_server() as smtp:
        env = env_for(
            url, losable_broker.url, tmp_path,
            CRM_MAIL_URL=smtp.url(),
            # Slow enough to be killed in the middle; a claim older than the
            # task time limit belongs to a dead batch.
            CRM_MAIL_RATE_PER_SECOND="60",
            CRM_TASK_TIME_LIMIT_SECONDS="15",
        )  # fmt: skip
        with celery_worker(
            env, queues="campaigns", pool=pool, concurrency=4 if pool == "threads" else 2,
            beat=True, log_path=tmp_path / "worker-1.log",
        ) as first:  # fmt: skip
            wait_until(
                lambda: len(smtp.handler.received) >= 120,
                timeout=90,
                what="120 messages before the kill",
            )
            kill_group(first)
        # The broker forgets everything it held.
        losable_broker.restart()
        delivered_before = len(smtp.handler.received)
        assert delivered_before < RECIPIENTS
        with celery_worker(
            env, queues="campaigns", pool=pool, beat=True, log_path=tmp_path / "worker-2.log"
        ):
            wait_until(
                lambda: view(sessions, campaign_id).status == "sent",
                timeout=180,
                what="the campaign to finish after the crash",
                interval=0.5,
            )
        received = Counter(mail.rcpt_tos[0] for mail in smtp.handler.received)

    stats = view(sessions, campaign_id).stats
    assert set(received.values()) == {1}, "a recipient got two messages"
    assert stats["sent"] + stats["unknown"] == RECIPIENTS
    assert stats["failed"] == 0
    # Everything recorded sent reached the server; unknown rows may or may not have.
    assert stats["sent"] <= len(received) <= RECIPIENTS
    assert len(received) > delivered_before  # the second worker went on sending
    # Only the batches in flight at the kill can be unknown.
    assert stats["unknown"] <= 2 * 100


def test_the_http_api_backend_sends_each_message_once(
    database: tuple[str, sessionmaker[Session]], losable_broker: LosableBroker, tmp_path: Path
) -> None:
    url, sessions = database
    add_contacts(sessions, RECIPIENTS)
    campaign_id = create(sessions, "api")
    with running_mail_api() as api:
        env = env_for(url, losable_broker.url, tmp_path, CRM_MAIL_URL=api.url)
        with celery_worker(
            env, queues="campaigns", pool="threads", concurrency=4, beat=True,
            log_path=tmp_path / "w.log",
        ):  # fmt: skip
            wait_until(
                lambda: view(sessions, campaign_id).status == "sent",
                timeout=180,
                what="the campaign to be sent",
                interval=0.5,
            )
        requests = list(api.requests)
    stats = view(sessions, campaign_id).stats
    assert (stats["sent"], stats["unknown"], stats["failed"]) == (RECIPIENTS, 0, 0)
    assert len(requests) == RECIPIENTS
    keys = Counter(r.headers.get("Idempotency-Key") for r in requests)
    assert len(keys) == RECIPIENTS
    assert None not in keys


def test_two_beats_for_a_minute_start_each_run_once(
    database: tuple[str, sessionmaker[Session]], tmp_path: Path
) -> None:
    url, sessions = database
    add_contacts(sessions, 20)
    soon = utcnow() + dt.timedelta(seconds=20)
    started = time.monotonic()
    port = free_port()
    redis_server = start_redis(port)
    try:
        with running_smtp_server() as smtp:
            now_id = create(sessions, "now")
            soon_id = create(sessions, "soon", send_at=soon)
            every_id = create(sessions, "every", send_at=None, cron="* * * * *")
            env = env_for(url, f"redis://127.0.0.1:{port}/0", tmp_path, CRM_MAIL_URL=smtp.url())
            queues = "campaigns,maintenance"
            with (
                celery_worker(env, queues=queues, beat=True, log_path=tmp_path / "w1.log"),
                celery_worker(env, queues=queues, beat=True, log_path=tmp_path / "w2.log"),
            ):
                time.sleep(max(0.0, 65 - (time.monotonic() - started)))
                # Let a run that is under way finish before counting.
                wait_until(
                    lambda: all(
                        view(sessions, c).status != "sending" for c in (now_id, soon_id, every_id)
                    ),
                    timeout=60,
                    what="no campaign sending",
                    interval=0.5,
                )
            received = Counter(
                (mail.message["Subject"].split(":")[0], mail.rcpt_tos[0])
                for mail in smtp.handler.received
            )
    finally:
        stop(redis_server)

    assert (view(sessions, now_id).status, view(sessions, soon_id).status) == ("sent", "sent")
    every = view(sessions, every_id)
    runs = _runs(sessions, every_id)
    assert every.status == "scheduled"
    assert runs >= 1
    assert every.current_run == runs + 1
    for code, times in (("now", 1), ("soon", 1), ("every", runs)):
        per_contact = [n for (subject, _), n in received.items() if subject == code]
        assert per_contact == [times] * 20, code


def _runs(sessions: sessionmaker[Session], campaign_id: int) -> int:
    with sessions() as session:
        query = select(func.count(func.distinct(CampaignSend.run))).where(
            CampaignSend.campaign_id == campaign_id
        )
        return session.scalar(query) or 0
