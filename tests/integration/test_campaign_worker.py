"""A real worker with embedded beat sends a campaign to aiosmtpd, through a broker of its own
(a private Redis, or a RabbitMQ virtual host)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from crm_core import migrate
from crm_core.campaigns import services
from crm_core.campaigns.models import MarketingCampaign
from crm_core.customers.models import Contact, Customer
from crm_core.db import make_engine, make_session_factory
from tests.integration.conftest import LosableBroker
from tests.processes import celery_worker, service_env, wait_until
from tests.services import scratch_postgres_database
from tests.smtp_server import running_smtp_server

pytestmark = pytest.mark.slow
RECIPIENTS = 500


@pytest.fixture
def postgres_url(postgres_available: None) -> Iterator[str]:
    with scratch_postgres_database("crm_campaign_worker") as url:
        migrate.upgrade(url)
        yield url


def _campaign(url: str) -> int:
    engine = make_engine(url)
    try:
        with make_session_factory(engine).begin() as session:
            customer = Customer(name="Worker Co", name_key="worker co", kind="company")
            session.add(customer)
            session.flush()
            session.add_all(
                Contact(customer_id=customer.id, first_name=f"W{n}", email=f"w{n}@example.com",
                        email_normalized=f"w{n}@example.com")
                for n in range(RECIPIENTS)
            )  # fmt: skip
            campaign = services.create_campaign(
                session, name="Beat", code="beat", subject="Hi {{ contact.first_name }}", text="x"
            )
            services.send_now(session, campaign_id=campaign.id)
            return campaign.id
    finally:
        engine.dispose()


def test_beat_dispatches_and_the_worker_sends_each_message_once(
    postgres_url: str, losable_broker: LosableBroker, tmp_path: Path
) -> None:
    campaign_id = _campaign(postgres_url)
    engine = make_engine(postgres_url)
    sessions = make_session_factory(engine)

    def campaign_sent() -> bool:
        with sessions() as session:
            status = session.scalar(
                select(MarketingCampaign.status).where(MarketingCampaign.id == campaign_id)
            )
        return status == "sent"

    try:
        with running_smtp_server() as smtp:
            env = service_env(
                CRM_DATABASE_URL=postgres_url,
                CRM_BROKER_URL=losable_broker.url,
                CRM_SECRET_KEY="worker-test-secret",
                CRM_PUBLIC_URL="https://crm.example.com",
                CRM_MAIL_URL=smtp.url(),
                CRM_VAR_DIR=str(tmp_path),
            )
            log = tmp_path / "worker.log"
            with celery_worker(env, queues="campaigns", beat=True, log_path=log):
                wait_until(campaign_sent, timeout=120, what="the campaign to be sent")
            received = sorted(mail.rcpt_tos[0] for mail in smtp.handler.received)
        with sessions() as session:
            stats = services.get_campaign_view(session, campaign_id=campaign_id).stats
    finally:
        engine.dispose()
    assert received == sorted(f"w{n}@example.com" for n in range(RECIPIENTS))
    assert (stats["sent"], stats["unknown"], stats["failed"]) == (RECIPIENTS, 0, 0)
