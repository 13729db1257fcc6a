"""A campaign sent through Mailgun, SendGrid or Postmark (local fakes of their send APIs).

The tasks run in-process against the test database, with ``CRM_MAIL_URL`` naming the
provider as a user would; each send records the provider's id, and a bounce the
provider reports under that id marks that very send.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from crm_core.bounces.models import SentMessage, Suppression
from crm_core.bounces.reports import DeliveryReport, ReportOutcome, apply_delivery_reports
from crm_core.bounces.services import BouncePolicy
from crm_core.campaigns import services
from crm_core.campaigns.models import CampaignSend
from crm_core.config import Settings
from crm_core.customers.models import Contact, Customer
from crm_core.db import make_session_factory
from tests.provider_mail_apis import ProviderApi, mail_url, running_provider_api
from tests.smtp_server import self_signed_certificate, server_tls_context
from workers import db as worker_db
from workers import tasks


@pytest.fixture(params=["mailgun", "sendgrid", "postmark"])
def provider(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[ProviderApi, Path]]:
    cert, key = self_signed_certificate(tmp_path)
    with running_provider_api(request.param, tls=server_tls_context(cert, key)) as fake:
        yield fake, cert


@pytest.fixture
def worker(
    committed_db: Engine,
    database_url: str,
    provider: tuple[ProviderApi, Path],
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[list[int]]:
    """Tasks bound to the test database and the provider's URL; the batches they published."""
    settings = Settings(
        database_url=database_url,
        broker_url="memory://",
        ratelimit_url="memory://",
        ratelimit_prefix=f"test-{uuid.uuid4().hex}",
        secret_key="campaign-provider-secret",
        public_url="https://crm.example.com",
        mail_url=mail_url(*provider),
        mail_from="Shop <news@shop.example>",
    )
    published: list[int] = []

    def record(campaign_id: int, *, parallel: int, countdown: float | None = None) -> int:
        published.extend([campaign_id] * parallel)
        return parallel

    monkeypatch.setattr(tasks, "enqueue_send_batches", record)
    sessions = make_session_factory(committed_db)
    with contextlib.ExitStack() as stack:
        stack.enter_context(worker_db.injected(settings=settings, sessions=sessions))
        yield published


def _campaign_to(engine: Engine, count: int) -> int:
    with make_session_factory(engine).begin() as session:
        customer = Customer(name="Many Co", name_key="many co", kind="company")
        session.add(customer)
        session.flush()
        session.add_all(
            Contact(
                customer_id=customer.id,
                first_name=f"P{n}",
                email=f"p{n}@example.com",
                email_normalized=f"p{n}@example.com",
            )
            for n in range(count)
        )
        campaign = services.create_campaign(
            session,
            name="News",
            code="news",
            subject="News for {{ contact.first_name }}",
            text="Hi {{ contact.first_name }}. Leave: {{ unsubscribe_url }}",
        )
        services.send_now(session, campaign_id=campaign.id)
        return campaign.id


def test_a_campaign_records_each_providers_id_and_a_bounce_finds_its_send(
    committed_db: Engine, worker: list[int], provider: tuple[ProviderApi, Path]
) -> None:
    fake, _ = provider
    campaign_id = _campaign_to(committed_db, 5)
    assert tasks.dispatch_campaigns() == 1
    while worker:
        tasks.send_batch(worker.pop())
    assert fake.problems == []
    with Session(committed_db) as session:
        sends = list(session.scalars(select(CampaignSend).order_by(CampaignSend.id)))
        assert {s.status for s in sends} == {"sent"}
        assert sorted(s.provider_message_id or "" for s in sends) == sorted(fake.ids)
        recorded = {
            m.provider_message_id: m.recipient for m in session.scalars(select(SentMessage))
        }
    # Mailgun's id is the Message-ID in angle brackets: recorded without them.
    assert sorted(recorded) == sorted(i.strip("<>") for i in fake.ids)
    bounced = sends[2]
    with make_session_factory(committed_db).begin() as session:
        apply_delivery_reports(
            session,
            [
                DeliveryReport(
                    provider=fake.name,
                    report_id="evt-1",
                    recipient=bounced.email,
                    outcome=ReportOutcome.BOUNCED,
                    permanent=True,
                    provider_message_id=bounced.provider_message_id,
                    reason="550 5.1.1 mailbox unavailable",
                )
            ],
            policy=BouncePolicy(),
        )
    with Session(committed_db) as session:
        suppressed = list(session.scalars(select(Suppression.email_normalized)))
        stats = services.get_campaign_view(session, campaign_id=campaign_id).stats
    assert suppressed == [bounced.email]
    assert (stats["sent"], stats["reported_bounced"], stats["bounced"]) == (5, 1, 1)
