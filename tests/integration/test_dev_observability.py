"""`make run` as a new user meets it: post a webhook, find it in /metrics and in the JSON lines.

``crm dev`` runs the web app in its own process and a worker (with beat) beside it; both count
into one metrics directory under ``var/``, so ``/metrics`` shows the request and its
processing together, and both log the event's id and its request's.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import requests

from crm_core.db import make_engine, make_session_factory
from crm_core.ingestion import services
from crm_core.people import api_keys
from crm_core.people.permissions import Actor
from tests.crm_core.ops.test_metrics import samples
from tests.keyring import TEST_KEYRING
from tests.processes import REPO, service_env, stop, wait_until
from tests.services import free_port
from tests.signed import signed_headers

pytestmark = pytest.mark.slow

LEAD = {"email": "Ada@Example.com", "first_name": "Ada", "company": "Engines Ltd"}


def _lines(log: Path) -> list[dict[str, Any]]:
    text = log.read_text(errors="replace").splitlines()
    return [json.loads(line) for line in text if line.startswith("{")]


def test_a_webhook_is_in_metrics_and_in_json_lines_with_one_event_id(tmp_path: Path) -> None:
    port = free_port()
    var = tmp_path / "var"
    env = service_env(CRM_VAR_DIR=str(var), CRM_LOG_FORMAT="json")
    log_path = tmp_path / "dev.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "crm_cli", "dev", "--port", str(port)],
            cwd=REPO,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    engine = make_engine(f"sqlite:///{var / 'crm.sqlite3'}", keyring=TEST_KEYRING)
    try:
        wait_until(lambda: _ready(base), timeout=60, what="crm dev's /readyz")
        with make_session_factory(engine).begin() as session:
            _, secret = services.create_source(session, name="website")
            _, key = api_keys.create_api_key(
                session, actor=Actor.operator("tests"), name="ops", scopes=["admin"]
            )
        body = json.dumps(LEAD).encode()
        headers = {**signed_headers(secret, body), "X-Request-ID": "my-first-lead"}
        answer = requests.post(f"{base}/webhooks/website/leads", data=body, headers=headers)
        assert answer.status_code == 202, answer.text
        assert answer.headers["X-Request-ID"] == "my-first-lead"
        event_id = answer.json()["event_id"]
        worker_line = wait_until(
            lambda: _line(log_path, "workers.telemetry", event_id),
            timeout=60,
            what="the worker's line about the event",
        )
        found = samples(
            requests.get(f"{base}/metrics", headers={"Authorization": f"Bearer {key}"}).text
        )
    finally:
        stop(process)
        engine.dispose()
    web_line = _line(log_path, "webhooks.telemetry", event_id)
    assert web_line is not None
    assert web_line["request_id"] == worker_line["request_id"] == "my-first-lead"
    assert worker_line["message"] == f"event {event_id} processed"
    assert worker_line["task_id"]
    # The web process's series and the worker's, from one directory.
    website = ("source", "website")
    assert found[(RECEIVED, (("code", "202"), ("kind", "leads"), website))] == 1
    assert found[(PROCESSED, (("kind", "leads"), ("outcome", "processed"), website))] == 1
    assert "example.com" not in log_path.read_text().lower()


RECEIVED = "crm_webhooks_received_total"
PROCESSED = "crm_events_processed_total"


def _ready(base: str) -> bool:
    try:
        return requests.get(f"{base}/readyz", timeout=2).status_code == 200
    except requests.ConnectionError:
        return False


def _line(log: Path, logger: str, event_id: int) -> dict[str, Any] | None:
    for line in _lines(log):
        if line.get("logger") == logger and line.get("event_id") == event_id:
            return line
    return None
