"""What a worker tells its operators about events: log lines with their ids, and metrics.

Real handlers, run in-process on the test database; the log lines are the JSON ones a
worker writes, captured as written.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import logging
import uuid
from collections.abc import Iterator

import pytest
from prometheus_client import generate_latest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from crm_core.db import make_session_factory, utcnow
from crm_core.ingestion.models import EventStatus, InboxEvent, Source
from crm_core.ops import dashboard, logs
from crm_core.ops.models import EventRateBucket
from crm_core.ops.services import UNFINISHED
from tests.crm_core.ops.test_metrics import samples
from tests.signed import fixture_bytes
from workers import db as worker_db
from workers import ops_tasks, tasks

# What the fixtures say about their people: none of it may reach a log line.
PERSONAL = ("Ada.Lovelace", "ada.lovelace", "Lovelace", "grace@example.org", "Grace Hopper")


@pytest.fixture
def worker_session(committed_db: Engine) -> Iterator[Session]:
    factory = make_session_factory(committed_db)
    with worker_db.injected(sessions=factory), factory() as session:
        yield session


@pytest.fixture
def log_lines() -> Iterator[io.StringIO]:
    """The JSON lines the worker writes, at INFO, as a worker configures its logging."""
    stream = io.StringIO()
    root = logging.getLogger()
    level = root.level
    logs.configure_logging(format=logs.JSON, level="INFO", process="worker", stream=stream)
    yield stream
    for handler in [h for h in root.handlers if isinstance(h, logs._CrmHandler)]:
        root.removeHandler(handler)
    root.setLevel(level)


def _store(session: Session, source: str, kind: str, body: bytes) -> int:
    found = session.query(Source).filter_by(name=source).one_or_none()
    if found is None:
        found = Source(name=source)
        session.add(found)
        session.flush()
    event = InboxEvent(
        source_id=found.id,
        kind=kind,
        webhook_id=f"msg_{uuid.uuid4().hex}",
        content_type="application/json",
        body=body,
    )
    session.add(event)
    session.commit()
    return event.id


def _parsed(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_each_event_line_carries_its_ids_and_no_personal_data(
    worker_session: Session, log_lines: io.StringIO
) -> None:
    source = f"site-{uuid.uuid4().hex[:8]}"
    lead = _store(worker_session, source, "leads", fixture_bytes("lead.json"))
    ticket = _store(worker_session, source, "tickets", fixture_bytes("ticket.json"))
    broken = _store(
        worker_session, source, "leads", b'{"first_name": "Ada", "last_name": "Lovelace"}'
    )
    before = samples(generate_latest())
    headers = {"crm_request_ids": {str(lead): "req-lead", str(ticket): "req-ticket"}}

    result = tasks.process_events.apply(args=([lead, ticket, broken],), headers=headers)

    assert result.get() == {"processed": 2, "invalid": 1}
    lines = _parsed(log_lines)
    by_event = {line["event_id"]: line for line in lines if line["message"].startswith("event ")}
    assert by_event[lead]["message"] == f"event {lead} processed"
    assert by_event[ticket]["message"] == f"event {ticket} processed"
    assert by_event[broken]["message"] == f"event {broken} invalid"
    for event_id, kind, request_id in (
        (lead, "leads", "req-lead"),
        (ticket, "tickets", "req-ticket"),
        (broken, "leads", None),
    ):
        line = by_event[event_id]
        assert (line["source"], line["kind"]) == (source, kind)
        assert line.get("request_id") == request_id
        assert line["task_id"] == result.id
        assert line["service"] == "worker"
    written = log_lines.getvalue()
    assert not [word for word in PERSONAL if word.lower() in written.lower()]
    with worker_session.begin():
        assert worker_session.get(InboxEvent, ticket).status == EventStatus.PROCESSED  # type: ignore[union-attr]

    after = samples(generate_latest())

    def delta(name: str, labels: tuple[tuple[str, str], ...]) -> float:
        return after.get((name, labels), 0.0) - before.get((name, labels), 0.0)

    processed = "crm_events_processed_total"
    assert delta(processed, (("kind", "leads"), ("outcome", "processed"), ("source", source))) == 1
    assert delta(processed, (("kind", "leads"), ("outcome", "invalid"), ("source", source))) == 1
    assert (
        delta(processed, (("kind", "tickets"), ("outcome", "processed"), ("source", source))) == 1
    )
    lag = "crm_event_received_to_processed_seconds_count"
    assert delta(lag, (("kind", "tickets"),)) == 1


def test_a_batch_of_leads_logs_a_line_for_each_event(
    worker_session: Session, log_lines: io.StringIO
) -> None:
    source = f"batch-{uuid.uuid4().hex[:8]}"
    first = _store(worker_session, source, "leads", b'{"email": "first.person@example.net"}')
    second = _store(worker_session, source, "leads", b'{"email": "second.person@example.net"}')

    result = tasks.process_events.apply(
        args=([first, second],), headers={"crm_request_id": "req-both"}
    )

    assert result.get() == {"processed": 2}
    lines = [line for line in _parsed(log_lines) if line["message"].startswith("event ")]
    assert sorted(line["event_id"] for line in lines) == [first, second]
    assert {line["request_id"] for line in lines} == {"req-both"}
    assert "person@example.net" not in log_lines.getvalue()


def test_beat_reads_the_backlog_into_the_gauges(worker_session: Session) -> None:
    source = f"backlog-{uuid.uuid4().hex[:8]}"
    waiting = _store(worker_session, source, "leads", b'{"email": "x@example.com"}')
    counts = ops_tasks.read_backlog.apply().get()
    found = samples(generate_latest())
    received = counts["inbox events"]["received"]
    assert received >= 1
    assert found[("crm_inbox_events", (("status", "received"),))] == received
    # A status no row has reads 0 rather than being left out (or at an old value).
    for status in ("dead", "failed", "invalid"):
        expected = counts["inbox events"].get(status, 0)
        assert found[("crm_inbox_events", (("status", status),))] == expected
    assert ("crm_campaign_send_rows", (("status", "unknown"),)) in found
    assert found[("crm_backlog_read_timestamp_seconds", ())] > 0
    assert waiting
    # Finished rows grow with the table: the reading counts only what waits or went wrong.
    for table, statuses in counts.items():
        assert set(statuses) <= set(UNFINISHED[table]), table


def test_beat_rolls_up_the_event_rates_the_overview_reads(worker_session: Session) -> None:
    source = f"rates-{uuid.uuid4().hex[:8]}"
    event = worker_session.get(InboxEvent, _store(worker_session, source, "leads", b"{}"))
    assert event is not None
    event.received_at = utcnow() - dt.timedelta(hours=1)
    worker_session.commit()
    assert ops_tasks.roll_up_event_rates.apply(kwargs={"full": True}).get() == 192
    assert ops_tasks.roll_up_event_rates.apply().get() in (2, 3)  # 3 if a quarter hour closed
    stored = worker_session.scalar(
        select(func.sum(EventRateBucket.count)).where(EventRateBucket.kind == "leads")
    )
    assert stored == 1
    rates = dashboard.event_rates(worker_session, now=utcnow())
    assert rates.totals() == {("leads", "received"): 1}
