"""A web form end to end: a browser's post through gunicorn, the real Redis and a real worker
into PostgreSQL, as a contact with the consent the form's checkbox stated."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from sqlalchemy import select

from crm_core import migrate as schema
from crm_core import models as m
from crm_core.db import make_engine, make_session_factory
from crm_core.ingestion import services
from crm_core.ingestion.models import EventStatus, InboxEvent
from tests.keyring import TEST_KEYRING
from tests.processes import celery_worker, service_env, wait_until, web_app
from tests.services import REDIS_URL, redis_reason, scratch_postgres_database, unavailable

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.slow]

SITE = "https://www.example.com"


@pytest.fixture
def platform(postgres_available: None, tmp_path: Path) -> Iterator[tuple[dict[str, str], str]]:
    reason = redis_reason()
    if reason:
        unavailable("Redis", reason)
    with scratch_postgres_database("crm_forms_e2e") as url:
        schema.upgrade(url)
        engine = make_engine(url, keyring=TEST_KEYRING)
        with make_session_factory(engine).begin() as session:
            services.create_source(
                session,
                name="website",
                provider="form",
                allowed_origins=[SITE],
                redirect_url=f"{SITE}/thanks",
            )
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


def test_a_posted_form_becomes_a_contact_with_its_consent_through_a_worker(
    platform: tuple[dict[str, str], str], tmp_path: Path
) -> None:
    env, url = platform
    engine = make_engine(url, keyring=TEST_KEYRING)
    sessions = make_session_factory(engine)
    fields = {
        "email": "Ada@Example.com",
        "first_name": "Ada",
        "last_name": "Lovelace",
        "consent": "yes",
        "topic": "engines",
        "_gotcha": "",
    }
    browser = {"Origin": SITE, "Accept": "text/html,*/*;q=0.8"}
    try:
        with (
            web_app(env) as base,
            celery_worker(env, queues="ingest", log_path=tmp_path / "worker.log"),
        ):
            sent = dt.datetime.now(dt.UTC)
            response = requests.post(
                f"{base}/forms/website",
                data=fields,
                headers=browser,
                allow_redirects=False,
                timeout=30,
            )
            assert response.status_code == 303, response.text
            assert response.headers["Location"] == f"{SITE}/thanks"
            robot = requests.post(
                f"{base}/forms/website",
                files={"email": (None, "bot@example.com"), "_gotcha": (None, "http://spam")},
                headers=browser,
                allow_redirects=False,
                timeout=30,
            )
            assert (robot.status_code, robot.headers["Location"]) == (
                303,
                f"{SITE}/thanks",
            )

            def settled() -> list[str] | None:
                with sessions() as session:
                    statuses = list(
                        session.scalars(select(InboxEvent.status).order_by(InboxEvent.id))
                    )
                return statuses if statuses and statuses[0] == EventStatus.PROCESSED else None

            statuses = wait_until(settled, timeout=120, what="the form's event processed")
            assert statuses == [EventStatus.PROCESSED, EventStatus.IGNORED]
        with sessions() as session:
            contact = session.scalars(select(m.Contact)).one()
            assert (contact.email_normalized, contact.last_name) == (
                "ada@example.com",
                "Lovelace",
            )
            assert (contact.marketing_consent, contact.marketing_consent_method) == (
                "granted",
                "form_checkbox",
            )
            source = session.scalars(select(m.Source).where(m.Source.name == "website")).one()
            assert contact.marketing_consent_source_id == source.id
            assert abs(contact.marketing_consent_at - sent) < dt.timedelta(minutes=1)
            activity = session.scalars(select(m.Activity)).one()
            assert activity.details["extra_fields"] == {"topic": "engines"}
    finally:
        engine.dispose()
