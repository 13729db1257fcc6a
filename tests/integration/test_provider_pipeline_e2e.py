"""Provider events end to end: a Shopify shop's signed webhooks through gunicorn, the real
Redis and a real worker into PostgreSQL, as orders with real totals and a contact."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
import requests
from sqlalchemy import select

from crm_core import migrate
from crm_core import models as m
from crm_core.db import make_engine, make_session_factory
from crm_core.ingestion import services
from crm_core.ingestion.models import EventStatus, InboxEvent
from tests.keyring import TEST_KEYRING
from tests.processes import celery_worker, service_env, wait_until, web_app
from tests.provider_requests import provider_fixture, shopify_headers
from tests.services import REDIS_URL, redis_reason, scratch_postgres_database, unavailable

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.slow]

SHOP_SECRET = "shpss_0123456789abcdef0123456789abcdef"


@pytest.fixture
def platform(postgres_available: None, tmp_path: Path) -> Iterator[tuple[dict[str, str], str]]:
    reason = redis_reason()
    if reason:
        unavailable("Redis", reason)
    with scratch_postgres_database("crm_providers_e2e") as url:
        migrate.upgrade(url)
        engine = make_engine(url, keyring=TEST_KEYRING)
        with make_session_factory(engine).begin() as session:
            services.create_source(session, name="shop", provider="shopify", secret=SHOP_SECRET)
        engine.dispose()
        env = service_env(
            CRM_DATABASE_URL=url,
            CRM_BROKER_URL=REDIS_URL,
            CRM_BROKER_KEY_PREFIX=f"e2e-{uuid.uuid4().hex}:",
            CRM_RATELIMIT_URL="memory://",
            CRM_SECRET_KEY="e2e-secret",
            CRM_VAR_DIR=str(tmp_path),
        )
        yield env, url


def post(base: str, topic: str, body: bytes) -> None:
    headers = shopify_headers(SHOP_SECRET, body, topic=topic)
    response = requests.post(f"{base}/webhooks/shop", data=body, headers=headers, timeout=30)
    assert response.status_code in (200, 202), response.text


def test_a_shop_s_order_and_customer_reach_the_crm_through_a_worker(
    platform: tuple[dict[str, str], str], tmp_path: Path
) -> None:
    env, url = platform
    engine = make_engine(url, keyring=TEST_KEYRING)
    sessions = make_session_factory(engine)
    order = json.loads(provider_fixture("shopify/orders_create.json"))
    try:
        with (
            web_app(env) as base,
            celery_worker(env, queues="ingest", log_path=tmp_path / "worker.log"),
        ):
            post(base, "customers/create", provider_fixture("shopify/customers_create.json"))
            post(base, "orders/create", json.dumps(order).encode())

            def settled() -> list[str] | None:
                with sessions() as session:
                    statuses = list(session.scalars(select(InboxEvent.status)))
                done = len(statuses) == 2 and EventStatus.RECEIVED not in statuses
                return statuses if done and EventStatus.PROCESSING not in statuses else None

            statuses = wait_until(settled, timeout=120, what="both events processed")
            assert statuses == [EventStatus.PROCESSED, EventStatus.PROCESSED]
            # A later topic moves the order on.
            post(
                base,
                "orders/fulfilled",
                json.dumps({**order, "fulfillment_status": "fulfilled"}).encode(),
            )

            def fulfilled() -> bool:
                with sessions() as session:
                    return session.scalar(select(m.Order.status)) == "fulfilled"

            wait_until(fulfilled, timeout=120, what="the order fulfilled")
        with sessions() as session:
            stored = session.scalars(select(m.Order)).one()
            assert (stored.order_number, stored.total, stored.tax_total) == (
                "#1042",
                Decimal("67.21"),
                Decimal("4.61"),
            )
            contact = session.scalars(select(m.Contact)).one()
            assert contact.marketing_consent == "granted"
            assert stored.contact_id == contact.id
    finally:
        engine.dispose()
