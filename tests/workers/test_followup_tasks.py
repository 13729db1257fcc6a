"""The follow-up task in process: a broken rules file is one logged line, not a traceback."""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from prometheus_client import generate_latest
from sqlalchemy import Engine

from crm_core.config import Settings
from crm_core.db import make_session_factory
from tests.crm_core.ops.test_metrics import samples
from tests.services import free_port
from workers import db as worker_db
from workers import followup_tasks


@pytest.fixture
def bound(committed_db: Engine, database_url: str) -> Iterator[Settings]:
    settings = Settings(database_url=database_url, broker_url="memory://")
    with worker_db.injected(settings=settings, sessions=make_session_factory(committed_db)):
        yield settings


def test_a_bad_rules_file_is_logged_on_one_line(
    bound: Settings,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    rules = tmp_path / "rules.toml"
    rules.write_text('[[rule]]\nname = "x"\nkind = "opportunity_idle"\nafter = "later"\n')
    monkeypatch.setattr(bound, "followup_rules", str(rules))
    with caplog.at_level(logging.ERROR, logger=followup_tasks.__name__):
        assert followup_tasks.evaluate_followups.run() == 0
    [record] = caplog.records
    assert record.getMessage() == (
        f"follow-up rules not evaluated: {rules}: rule 'x', field after: "
        "must be a duration such as '30s', '48h' or '7d'"
    )
    assert record.exc_info is None


def test_the_defaults_evaluate_an_empty_database(bound: Settings) -> None:
    assert followup_tasks.evaluate_followups.run() == 0
    assert followup_tasks.deliver_notifications.run() == {}


def test_the_sender_claims_in_small_rounds_until_nothing_is_due(
    bound: Settings, committed_db: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    from crm_core.notifications.services import add_subscription, notify
    from tests.crm_core.notifications.samples import sample_event

    sessions = make_session_factory(committed_db)
    with sessions.begin() as session:
        # Nothing listens there: every attempt is refused at once and retried later.
        add_subscription(session, url=f"http://127.0.0.1:{free_port()}/x", events=["*"])
        for case_id in range(25):
            notify(session, sample_event(case_id))
    rounds: list[int] = []
    real = followup_tasks.deliver_due

    def counting(*args: object, limit: int, **kwargs: object) -> dict[str, int]:
        rounds.append(limit)
        return real(*args, limit=limit, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(followup_tasks, "deliver_due", counting)
    monkeypatch.setattr(bound, "notify_allow_private", True)
    # Retries an hour away: however slow the machine, none comes due again within the run.
    unhurried = followup_tasks.send_settings
    monkeypatch.setattr(
        followup_tasks,
        "send_settings",
        lambda settings: dataclasses.replace(unhurried(settings), backoff_base=3600.0),
    )
    totals = followup_tasks.deliver_notifications.run()
    assert totals == {"pending": 25}
    assert rounds == [10, 10, 10]


@pytest.fixture
def receiver() -> Iterator[tuple[str, list[bytes]]]:
    """A real HTTP endpoint on loopback that accepts every notification (204)."""
    got: list[bytes] = []

    class Accept(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            got.append(self.rfile.read(int(self.headers.get("Content-Length", 0))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Accept)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hook", got
    finally:
        server.shutdown()
        server.server_close()


def test_deliveries_are_counted_for_prometheus_by_outcome(
    bound: Settings,
    committed_db: Engine,
    monkeypatch: pytest.MonkeyPatch,
    receiver: tuple[str, list[bytes]],
) -> None:
    """``crm_notification_deliveries_total`` by outcome: one delivered, one to retry."""
    from crm_core.notifications.services import add_subscription, notify
    from tests.crm_core.notifications.samples import sample_event

    url, got = receiver
    with make_session_factory(committed_db).begin() as session:
        add_subscription(session, url=url, events=["*"])
        add_subscription(session, url=f"http://127.0.0.1:{free_port()}/refused", events=["*"])
        for case_id in range(3):
            notify(session, sample_event(case_id))
    monkeypatch.setattr(bound, "notify_allow_private", True)
    before = samples(generate_latest())
    totals = followup_tasks.deliver_notifications.run()
    after = samples(generate_latest())

    def delta(outcome: str) -> float:
        key = ("crm_notification_deliveries_total", (("outcome", outcome),))
        return after.get(key, 0.0) - before.get(key, 0.0)

    assert totals == {"delivered": 3, "pending": 3}
    assert len(got) == 3
    assert (delta("delivered"), delta("pending"), delta("failed")) == (3, 3, 0)
