"""`crm dev` on a machine with no services: SQLite, the embedded broker, a real worker."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from tests.processes import REPO, service_env, stop, wait_until
from tests.services import free_port

pytestmark = pytest.mark.slow


def test_dev_server_runs_web_worker_and_beat_without_services(tmp_path: Path) -> None:
    port = free_port()
    env = service_env(CRM_VAR_DIR=str(tmp_path / "var"), CRM_HEARTBEAT_SECONDS="1")
    log = open(tmp_path / "dev.log", "wb")  # noqa: SIM115
    process = subprocess.Popen(
        [sys.executable, "-m", "crm_cli", "dev", "--port", str(port)],
        cwd=REPO,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        try:
            return requests.get(f"{base}/readyz", timeout=2).status_code == 200
        except requests.ConnectionError:
            return False

    def heartbeats() -> int:
        with sqlite3.connect(tmp_path / "var" / "crm.sqlite3") as conn:
            return conn.execute("SELECT coalesce(sum(beats), 0) FROM worker_heartbeats").fetchone()[
                0
            ]

    try:
        wait_until(ready, timeout=60, what="/readyz to answer 200")
        assert requests.get(f"{base}/healthz", timeout=2).json() == {"status": "ok"}
        # Beat schedules the heartbeat, the broker carries it, the worker writes it.
        wait_until(lambda: heartbeats() >= 2, timeout=60, what="two heartbeats from the worker")
    finally:
        stop(process)
        log.close()
    output = (tmp_path / "dev.log").read_text()
    assert process.returncode == 0, output
    # No CRM_PUBLIC_URL given: unsubscribe links point at the port served.
    assert f"public URL http://127.0.0.1:{port}" in output
    assert (tmp_path / "var" / "broker.sqlite3").exists()
