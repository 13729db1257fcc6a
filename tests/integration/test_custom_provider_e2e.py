"""Custom senders end to end: both example mapping files, through gunicorn, the real Redis
and a real worker into PostgreSQL. A GitHub-style shop's order and a lead form's lead become
CRM data; a wrong signature is refused; a redelivery is one event; an event the mapping
cannot read is invalid, named by its JSON Pointer, and the CLI's set-mapping and replay turn
it into CRM data."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
import requests
from sqlalchemy import Engine, select
from sqlalchemy.orm import sessionmaker

from crm_core import migrate as schema
from crm_core import models as m
from crm_core.db import make_engine, make_session_factory
from crm_core.ingestion import services
from crm_core.ingestion.models import EventStatus, InboxEvent
from crm_core.providers.custom_spec import load_mapping
from tests.keyring import TEST_KEYRING
from tests.processes import REPO, celery_worker, service_env, wait_until, web_app
from tests.provider_requests import (
    EXAMPLES,
    github_style_headers,
    lead_form_headers,
    provider_fixture,
)
from tests.services import REDIS_URL, redis_reason, scratch_postgres_database, unavailable

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.slow]

SECRET = "e2e custom sender secret"


def _mapping(example: str, *, broken: bool = False) -> dict:  # type: ignore[type-arg]
    text = (EXAMPLES / example).read_text()
    if broken:  # the e-mail read from the wrong answer
        text = text.replace('"/submission/answers/email"', '"/submission/answers/first_name"')
    return load_mapping(text).model_dump(mode="json")


@pytest.fixture
def platform(postgres_available: None, tmp_path: Path) -> Iterator[tuple[dict[str, str], str]]:
    reason = redis_reason()
    if reason:
        unavailable("Redis", reason)
    with scratch_postgres_database("crm_custom_e2e") as url:
        schema.upgrade(url)
        engine = make_engine(url, keyring=TEST_KEYRING)
        with make_session_factory(engine).begin() as session:
            for name, example, broken in (
                ("shop", "github-style.toml", False),
                ("landing", "lead-form.toml", False),
                ("landing-v0", "lead-form.toml", True),
            ):
                services.create_source(
                    session,
                    name=name,
                    provider="custom",
                    secret=SECRET,
                    mapping=_mapping(example, broken=broken),
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


def _post(base: str, source: str, body: bytes, headers: dict[str, str]) -> requests.Response:
    return requests.post(f"{base}/webhooks/{source}", data=body, headers=headers, timeout=30)


def _settled(sessions: sessionmaker, count: int) -> list[str] | None:  # type: ignore[type-arg]
    with sessions() as session:
        statuses = list(session.scalars(select(InboxEvent.status).order_by(InboxEvent.id)))
    waiting = {EventStatus.RECEIVED, EventStatus.PROCESSING}
    return statuses if len(statuses) == count and not waiting & set(statuses) else None


def _crm(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "crm_cli", *args],
        cwd=REPO, env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_both_example_senders_reach_the_crm_through_a_worker(
    platform: tuple[dict[str, str], str], tmp_path: Path
) -> None:
    env, url = platform
    engine: Engine = make_engine(url, keyring=TEST_KEYRING)
    sessions = make_session_factory(engine)
    order = provider_fixture("custom/order_completed.json")
    lead = provider_fixture("custom/lead_submitted.json")
    other_lead = json.dumps(
        {
            "submission": {
                "id": "sub_2",
                "answers": {"email": "ada@example.com", "first_name": "Ada"},
            }
        }
    ).encode()
    try:
        with (
            web_app(env) as base,
            celery_worker(env, queues="ingest", log_path=tmp_path / "worker.log"),
        ):
            # A wrong signature, then the order twice (a redelivery is the same event).
            wrong = _post(base, "shop", order, github_style_headers("wrong", order))
            assert (wrong.status_code, wrong.headers["Content-Type"]) == (
                401,
                "application/problem+json",
            )
            headers = github_style_headers(SECRET, order, delivery="delivery-1")
            first, again = _post(base, "shop", order, headers), _post(base, "shop", order, headers)
            assert (first.status_code, again.status_code) == (202, 200)
            assert first.json()["event_id"] == again.json()["event_id"]
            # The lead form's lead, a stale one (refused), and one the old mapping cannot read.
            assert _post(base, "landing", lead, lead_form_headers(SECRET, lead)).status_code == 202
            stale = lead_form_headers(SECRET, lead, at=time.time() - 3600)
            assert _post(base, "landing", lead, stale).status_code == 401
            unread = _post(base, "landing-v0", other_lead, lead_form_headers(SECRET, other_lead))
            assert unread.status_code == 202

            statuses = wait_until(lambda: _settled(sessions, 3), timeout=120, what="3 events")
            assert statuses == [EventStatus.PROCESSED, EventStatus.PROCESSED, EventStatus.INVALID]
            with sessions() as session:
                invalid = session.get(InboxEvent, unread.json()["event_id"])
                assert invalid is not None
                assert [e["field"] for e in invalid.errors or []] == [
                    "/submission/answers/first_name"
                ]
                stored = session.scalars(select(m.Order)).one()
                assert (stored.order_number, stored.total, stored.status) == (
                    "SHOP-2001",
                    Decimal("42.50"),
                    "paid",
                )
                assert len(stored.lines) == 2
                emails = set(session.scalars(select(m.Contact.email_normalized)))
                assert emails == {"grace.hopper@example.org", "margaret.hamilton@example.com"}

            # Fix the mapping, replay the event: it becomes CRM data.
            fixed = tmp_path / "lead-form.toml"
            fixed.write_text((EXAMPLES / "lead-form.toml").read_text())
            _crm(env, "sources", "set-mapping", "landing-v0", str(fixed))
            _crm(env, "events", "replay", str(invalid.id))
            statuses = wait_until(
                lambda: (s := _settled(sessions, 3)) and EventStatus.INVALID not in s and s,
                timeout=120,
                what="the replayed event processed",
            )
            assert statuses == [EventStatus.PROCESSED] * 3
        with sessions() as session:
            emails = set(session.scalars(select(m.Contact.email_normalized)))
            assert "ada@example.com" in emails
    finally:
        engine.dispose()
