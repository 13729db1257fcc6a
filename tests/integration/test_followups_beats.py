"""Two workers, each with its own beat, evaluate the follow-up rules for a minute.

Rules in seconds; cases, leads and opportunities fall due at different moments
during the run, some created while it runs. Each due subject fires its rule
once: one escalation Activity per case, one follow-up e-mail per lead at the
SMTP server, and one notification per event at the subscriber's HTTP server,
although both beats publish an evaluation every second.
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
from crm_core import models as m
from crm_core.customers.services import create_customer
from crm_core.db import make_engine, make_session_factory, utcnow
from crm_core.notifications.services import add_subscription
from tests.keyring import TEST_KEYRING
from tests.mail_api_server import running_mail_api
from tests.processes import celery_worker, service_env, start_redis, stop, wait_until
from tests.services import free_port, scratch_postgres_database
from tests.smtp_server import running_smtp_server

pytestmark = pytest.mark.slow

RUN_SECONDS = 60
RULES = """
[[rule]]
name = "lead"
kind = "lead_no_outbound"
after = "3s"
email_subject = "Following up, {{ contact.first_name }}"
email_text = "Hello {{ contact.first_name }}"

[[rule]]
name = "case"
kind = "case_first_response_overdue"
after = "1s"

[[rule]]
name = "deal"
kind = "opportunity_idle"
after = "5s"
"""


@pytest.fixture
def database(postgres_available: None) -> Iterator[tuple[str, sessionmaker[Session]]]:
    with scratch_postgres_database("crm_followup_beats") as url:
        migrate.upgrade(url)
        engine = make_engine(url, keyring=TEST_KEYRING)
        yield url, make_session_factory(engine)
        engine.dispose()


@pytest.fixture
def private_redis() -> Iterator[str]:
    port = free_port()
    process = start_redis(port)
    try:
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        stop(process)


def add_subjects(sessions: sessionmaker[Session], tag: str, *, due_in: float) -> None:
    """Two leads, two cases and an opportunity that fall due about ``due_in`` seconds from now."""
    now = utcnow()
    with sessions.begin() as session:
        for n in range(2):
            address = f"{tag}-{n}@client.example"
            contact = m.Contact(
                first_name=f"{tag.title()}{n}",
                email=address,
                email_normalized=address,
                created_at=now - dt.timedelta(seconds=3) + dt.timedelta(seconds=due_in),
            )
            customer = create_customer(session, name=f"{tag} {n}", primary_contact=contact)
            session.add(
                m.SupportCase(
                    customer_id=customer.id,
                    contact_id=contact.id,
                    subject=f"{tag} problem {n}",
                    first_response_due_at=now + dt.timedelta(seconds=due_in),
                )
            )
        session.add(
            m.Opportunity(
                customer_id=customer.id,
                name=f"{tag} deal",
                created_at=now - dt.timedelta(seconds=5) + dt.timedelta(seconds=due_in),
            )
        )


def count(sessions: sessionmaker[Session], model: type, *where: object) -> int:
    with sessions() as session:
        return session.scalar(select(func.count()).select_from(model).where(*where)) or 0


def test_two_beats_fire_each_followup_once(
    database: tuple[str, sessionmaker[Session]], private_redis: str, tmp_path: Path
) -> None:
    url, sessions = database
    rules = tmp_path / "rules.toml"
    rules.write_text(RULES)
    started = time.monotonic()
    with running_smtp_server() as smtp, running_mail_api() as hooks:
        with sessions.begin() as session:
            add_subscription(session, url=hooks.url, events=["*"])
        add_subjects(sessions, "early", due_in=0)
        env = service_env(
            CRM_DATABASE_URL=url,
            CRM_BROKER_URL=private_redis,
            CRM_SECRET_KEY="followup-secret",
            CRM_VAR_DIR=str(tmp_path),
            CRM_MAIL_URL=smtp.url(),
            CRM_MAIL_FROM="CRM <crm@acme.test>",
            CRM_FOLLOWUP_RULES=str(rules),
            CRM_FOLLOWUP_EVAL_SECONDS="1",
            CRM_NOTIFY_ALLOW_PRIVATE="true",
        )
        queues = "followups,campaigns,maintenance"
        with (
            celery_worker(env, queues=queues, beat=True, log_path=tmp_path / "worker-1.log"),
            celery_worker(env, queues=queues, beat=True, log_path=tmp_path / "worker-2.log"),
        ):
            add_subjects(sessions, "middle", due_in=15)
            add_subjects(sessions, "late", due_in=30)
            # 3 rounds of (2 leads + 2 cases + 1 opportunity) = 15 tasks.
            wait_until(
                lambda: count(sessions, m.FollowUpTask) == 15,
                timeout=RUN_SECONDS + 30,
                what="15 follow-up tasks",
                interval=0.5,
            )
            # 6 e-mails; 6 case.escalated + 15 followup.created notifications.
            wait_until(
                lambda: len(smtp.handler.received) >= 6 and len(hooks.requests) >= 21,
                timeout=60,
                what="the follow-up e-mails and the notifications",
                interval=0.5,
            )
            # Both beats keep evaluating for the rest of the minute.
            time.sleep(max(0.0, RUN_SECONDS - (time.monotonic() - started)))

    escalations = Counter(
        case_id
        for case_id in _column(
            sessions,
            m.Activity.support_case_id,
            m.Activity.type == m.ActivityType.CASE_ESCALATED,
        )
    )
    assert len(escalations) == 6
    assert set(escalations.values()) == {1}
    recipients = Counter(mail.rcpt_tos[0] for mail in smtp.handler.received)
    assert len(recipients) == 6
    assert set(recipients.values()) == {1}
    deliveries = Counter(request.headers["webhook-id"] for request in hooks.requests)
    assert set(deliveries.values()) == {1}
    kinds = Counter(request.body["type"] for request in hooks.requests)
    assert kinds == {"case.escalated": 6, "followup.created": 15}
    subjects = Counter(
        (r.body["data"]["followup"]["rule"], r.body["data"]["followup"]["subject_id"])
        for r in hooks.requests
        if r.body["type"] == "followup.created"
    )
    assert set(subjects.values()) == {1}
    assert (
        count(sessions, m.NotificationDelivery, m.NotificationDelivery.status != "delivered") == 0
    )


def _column(sessions: sessionmaker[Session], column: object, *where: object) -> list[object]:
    with sessions() as session:
        return list(session.scalars(select(column).where(*where)))  # type: ignore[call-overload]
