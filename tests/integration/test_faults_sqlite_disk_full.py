"""The disk fills up under the embedded default (SQLite database and broker in ``var/``).

``var/`` is a small tmpfs of the test's own (a real ENOSPC, not a mock): the web
app answers 202 while there is room, then a clear 503 problem (never a 500, never
a hang); the database is not corrupted; once room is made, what was refused is
posted again, and a worker processes every acknowledged webhook exactly once.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
from collections.abc import Iterator
from contextlib import suppress
from pathlib import Path

import pytest
import requests
from sqlalchemy import func, select

from crm_core import migrate
from crm_core import models as m
from crm_core.db import make_engine, make_session_factory
from crm_core.ingestion import services
from crm_core.ingestion.models import EventStatus, InboxEvent
from tests.keyring import TEST_KEYRING
from tests.processes import celery_worker, service_env, wait_until, web_app
from tests.services import unavailable
from tests.signed import signed_headers

pytestmark = [pytest.mark.slow, pytest.mark.faults("disk full on the embedded SQLite default")]
# Room left once the database is made: a few dozen webhooks of BODY_BYTES each.
ROOM_BYTES = 1_500_000
BODY_BYTES = 40_000


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 16 MB tmpfs mounted for the test (root only; elsewhere skipped, or failed in CI)."""
    mount_point = tmp_path / "var"
    mount_point.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None:
        unavailable("a tmpfs of the test's own", "mounting one needs root")
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=16m,mode=0755", "tmpfs", str(mount_point)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mounted.returncode != 0:
        unavailable("a tmpfs of the test's own", mounted.stderr.strip())
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


def fill(directory: Path, leave: int) -> Path:
    """Write a filler file until only ``leave`` bytes are free on ``directory``'s filesystem."""
    filler = directory / "filler"
    stat = os.statvfs(directory)
    free = stat.f_bavail * stat.f_frsize
    with open(filler, "wb") as out, suppress(OSError):
        out.write(b"\0" * max(0, free - leave))
    return filler


def test_a_full_disk_refuses_webhooks_clearly_and_loses_or_corrupts_nothing(
    small_disk: Path,
) -> None:
    var = small_disk
    url = f"sqlite:///{var / 'crm.sqlite3'}"
    migrate.upgrade(url)
    engine = make_engine(url, keyring=TEST_KEYRING)
    sessions = make_session_factory(engine)
    with sessions.begin() as session:
        _, secret = services.create_source(session, name="forms")
    env = service_env(
        CRM_VAR_DIR=str(var),
        CRM_RATELIMIT_URL="memory://",
        CRM_SWEEP_INTERVAL_SECONDS="1",
        CRM_SWEEP_GRACE_SECONDS="1",
    )

    def post(base: str, n: int) -> requests.Response:
        body = json.dumps({"email": f"full{n}@example.com", "message": "x" * BODY_BYTES}).encode()
        headers = signed_headers(secret, body, msg_id=f"full-{n}")
        return requests.post(f"{base}/webhooks/forms/leads", data=body, headers=headers, timeout=60)

    acknowledged: list[int] = []
    refused: list[int] = []
    with web_app(env) as base:
        filler = fill(var, ROOM_BYTES)
        for n in range(400):
            response = post(base, n)
            assert response.status_code in (202, 503), (response.status_code, response.text)
            if response.status_code == 202:
                acknowledged.append(n)
                continue
            assert response.headers["Content-Type"].startswith("application/problem+json")
            assert response.json()["detail"]
            refused.append(n)
            if len(refused) == 5:
                break
        assert acknowledged, "the disk was full before the first webhook"
        assert len(refused) == 5, "the disk never filled up"

        # Room again: nothing is corrupt, everything acknowledged is there.
        filler.unlink()
        with sqlite3.connect(var / "crm.sqlite3") as conn:
            assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        for n in refused:
            assert post(base, n).status_code == 202  # it was never stored
        assert post(base, acknowledged[0]).status_code == 200  # a duplicate, as before

        with celery_worker(env, queues="ingest,maintenance", beat=True):

            def all_processed() -> bool:
                with sessions() as session:
                    statuses = session.scalars(select(InboxEvent.status)).all()
                return len(statuses) == len(acknowledged) + len(refused) and set(statuses) == {
                    EventStatus.PROCESSED
                }

            wait_until(all_processed, timeout=180, what="every webhook processed", interval=0.5)

    with sessions() as session:
        webhook_ids = set(session.scalars(select(InboxEvent.webhook_id)))
        per_event = session.execute(
            select(m.Activity.event_id, func.count())
            .where(m.Activity.type == "lead_captured")
            .group_by(m.Activity.event_id)
        ).all()
    assert webhook_ids == {f"full-{n}" for n in acknowledged + refused}
    assert sorted(count for _, count in per_event) == [1] * (len(acknowledged) + len(refused))
    engine.dispose()
    with sqlite3.connect(var / "crm.sqlite3") as conn:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
