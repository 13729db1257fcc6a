"""One webhook followed through real processes: gunicorn, Redis, a Celery worker, PostgreSQL.

The web process and the worker write JSON lines (the default with a real database) and share
a metrics directory, as ``crm dev`` does. Each event is found on the web's line and on the
worker's with the same ``event_id`` and request id; ``/metrics`` counts it on both sides; no
line holds an address or a name.
"""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from sqlalchemy import select

from crm_core import migrate
from crm_core.db import make_engine, make_session_factory
from crm_core.ingestion import services
from crm_core.ingestion.models import EventStatus, InboxEvent
from crm_core.people import api_keys
from crm_core.people.permissions import Actor
from tests.crm_core.ops.test_metrics import samples
from tests.keyring import TEST_KEYRING
from tests.processes import REPO, celery_worker, service_env, stop, wait_until
from tests.services import (
    REDIS_URL,
    free_port,
    redis_reason,
    scratch_postgres_database,
    unavailable,
)
from tests.signed import signed_headers

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.slow]

PEOPLE = [
    {"email": "Ada.Lovelace@Engines.example", "first_name": "Ada", "last_name": "Lovelace"},
    {"email": "charles.babbage@engines.example", "first_name": "Charles", "last_name": "Babbage"},
    {"email": "mary.somerville@engines.example", "first_name": "Mary", "last_name": "Somerville"},
]
RECEIVED = "crm_webhooks_received_total"
PROCESSED = "crm_events_processed_total"


@dataclass
class Platform:
    env: dict[str, str]
    secret: str
    admin_key: str
    url: str
    tmp: Path


@pytest.fixture
def platform(postgres_available: None, tmp_path: Path) -> Iterator[Platform]:
    reason = redis_reason()
    if reason:
        unavailable("Redis", reason)
    with scratch_postgres_database("crm_observe") as url:
        migrate.upgrade(url)
        engine = make_engine(url, keyring=TEST_KEYRING)
        with make_session_factory(engine).begin() as session:
            _, secret = services.create_source(session, name="website")
            _, key = api_keys.create_api_key(
                session, actor=Actor.operator("tests"), name="ops", scopes=["admin"]
            )
        env = service_env(
            CRM_DATABASE_URL=url,
            CRM_BROKER_URL=REDIS_URL,
            CRM_BROKER_KEY_PREFIX=f"observe-{uuid.uuid4().hex}:",
            CRM_RATELIMIT_URL="memory://",
            CRM_SECRET_KEY="observe-secret",
            CRM_VAR_DIR=str(tmp_path),
            PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "metrics"),
        )
        try:
            yield Platform(env, secret, key, url, tmp_path)
        finally:
            engine.dispose()


def _gunicorn(env: dict[str, str], port: int, log: Path) -> subprocess.Popen[bytes]:
    command = [
        sys.executable, "-m", "gunicorn", "--config", "python:webhooks.gunicorn_conf",
        "--workers", "2", "--threads", "4", "--worker-class", "gthread",
        "--bind", f"127.0.0.1:{port}", "webhooks.app:create_app()",
    ]  # fmt: skip
    with open(log, "wb") as out:
        return subprocess.Popen(command, cwd=REPO, env=env, stderr=out, stdout=out)


def _json_lines(path: Path) -> list[dict[str, Any]]:
    lines = path.read_text(errors="replace").splitlines()
    return [json.loads(line) for line in lines if line.startswith("{")]


def _post(base: str, secret: str, person: dict[str, str], request_id: str) -> requests.Response:
    body = json.dumps(person).encode()
    headers = signed_headers(secret, body, msg_id=f"observe-{uuid.uuid4().hex}")
    headers["X-Request-ID"] = request_id
    return requests.post(f"{base}/webhooks/website/leads", data=body, headers=headers, timeout=30)


def _scrape(
    url: str, key: str | None = None
) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    response = requests.get(url, headers=headers, timeout=10)
    assert response.status_code == 200, response.text
    return samples(response.text)


def test_one_event_id_from_the_request_to_the_worker_in_logs_and_metrics(
    platform: Platform,
) -> None:
    web_port, web_metrics, worker_metrics = free_port(), free_port(), free_port()
    web_log, worker_log = platform.tmp / "web.log", platform.tmp / "worker.log"
    web = _gunicorn({**platform.env, "CRM_METRICS_PORT": str(web_metrics)}, web_port, web_log)
    base = f"http://127.0.0.1:{web_port}"
    worker_env = {**platform.env, "CRM_METRICS_PORT": str(worker_metrics)}
    try:
        wait_until(lambda: _answers(f"{base}/healthz"), timeout=120, what="gunicorn", interval=0.2)
        with celery_worker(worker_env, queues="ingest", log_path=worker_log):
            sent = {f"req-{n}-{uuid.uuid4().hex[:8]}": person for n, person in enumerate(PEOPLE)}
            event_of: dict[str, int] = {}
            for request_id, person in sent.items():
                response = _post(base, platform.secret, person, request_id)
                assert response.status_code == 202, response.text
                assert response.headers["X-Request-ID"] == request_id
                event_of[request_id] = response.json()["event_id"]
            _wait_processed(platform.url, list(event_of.values()))
            worker_lines = wait_until(
                lambda: _event_lines(worker_log, len(PEOPLE)),
                timeout=30,
                what="the worker's event lines",
            )
            from_worker_port = _scrape(f"http://127.0.0.1:{worker_metrics}/metrics")
        refused = requests.get(f"{base}/metrics", timeout=10)
        from_web = _scrape(f"{base}/metrics", platform.admin_key)
        from_web_port = _scrape(f"http://127.0.0.1:{web_metrics}/metrics")
    finally:
        stop(web)

    # Logs: the web's line and the worker's line of each event share its ids.
    web_lines = {
        line["event_id"]: line
        for line in _json_lines(web_log)
        if line.get("service") == "web" and line["message"].startswith("webhook answered")
    }
    for request_id, event_id in event_of.items():
        stored, processed = web_lines[event_id], worker_lines[event_id]
        assert stored["request_id"] == processed["request_id"] == request_id
        assert (stored["source"], stored["kind"]) == ("website", "leads")
        assert (processed["source"], processed["kind"]) == ("website", "leads")
        assert processed["message"] == f"event {event_id} processed"
        assert processed["service"] == "worker"
        assert processed["task_id"]
    written = (web_log.read_text() + worker_log.read_text()).lower()
    for person in PEOPLE:
        for value in person.values():
            assert value.lower() not in written, f"{value} is in a log line"

    # Metrics: both sides of the shared directory, from /metrics and from each port.
    assert refused.status_code == 401
    received = (RECEIVED, (("code", "202"), ("kind", "leads"), ("source", "website")))
    processed_ok = (PROCESSED, (("kind", "leads"), ("outcome", "processed"), ("source", "website")))
    for found in (from_web, from_web_port, from_worker_port):
        assert found[received] == len(PEOPLE)
        assert found[processed_ok] == len(PEOPLE)


def _answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=1).ok
    except requests.RequestException:
        return False


def _wait_processed(url: str, event_ids: list[int]) -> None:
    engine = make_engine(url)
    sessions = make_session_factory(engine)

    def done() -> bool:
        with sessions() as session:
            statuses = session.scalars(
                select(InboxEvent.status).where(InboxEvent.id.in_(event_ids))
            ).all()
        return len(statuses) == len(event_ids) and set(statuses) == {EventStatus.PROCESSED}

    try:
        wait_until(done, timeout=90, what="the events processed", interval=0.3)
    finally:
        engine.dispose()


def _event_lines(path: Path, expected: int) -> dict[int, dict[str, Any]]:
    lines = {
        line["event_id"]: line
        for line in _json_lines(path)
        if line.get("event_id") and line["message"].startswith("event ")
    }
    return lines if len(lines) >= expected else {}
