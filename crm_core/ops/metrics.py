"""Every Prometheus series the platform exports, defined once, and how a process exposes them.

The web processes, the Celery workers and the sender all count into these objects. With
``PROMETHEUS_MULTIPROC_DIR`` set (gunicorn's workers, Celery's prefork pool, ``crm dev``),
each process writes its values to files in that directory, and whoever serves the metrics
(``/metrics``, or the port ``CRM_METRICS_PORT``) adds them up across processes.

Labels stay bounded: a source name, a kind, a status or an outcome, never an id or an
address. Sources are named by operators, so they are few; still, one process labels at most
``MAX_SOURCES`` of them and counts any further one as ``"(other)"``.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Mapping
from pathlib import Path

from prometheus_client import REGISTRY as PROCESS_REGISTRY
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
    start_http_server,
)

log = logging.getLogger(__name__)

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
MAX_SOURCES = 200
OTHER = "(other)"
NONE = "(none)"


def multiprocess_dir() -> Path | None:
    """The directory processes share their values through; ``None`` when each keeps its own."""
    value = os.environ.get(MULTIPROC_ENV, "").strip()
    return Path(value) if value else None


def _ensure_dir() -> None:
    # The value files are created as the metrics below are: the directory must exist first.
    directory = multiprocess_dir()
    if directory is not None:
        directory.mkdir(parents=True, exist_ok=True)


_ensure_dir()

# --- Intake (web) ---------------------------------------------------------------------------
WEBHOOKS_RECEIVED = Counter(
    "crm_webhooks_received",
    "Webhook requests answered, by source, kind and HTTP status code.",
    ["source", "kind", "code"],
)
INTAKE_SECONDS = Histogram(
    "crm_webhook_intake_seconds",
    "Time from the request's arrival to its answer, webhook routes only.",
    buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)

# --- Processing (worker) ----------------------------------------------------------------------
EVENTS_PROCESSED = Counter(
    "crm_events_processed",
    "Inbox events a worker finished with, by source, kind and outcome.",
    ["source", "kind", "outcome"],
)
EVENT_LAG_SECONDS = Histogram(
    "crm_event_received_to_processed_seconds",
    "Time from an event's storing to its processing, by kind.",
    ["kind"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0),
)
EVENTS_DEAD = Counter(
    "crm_events_dead",
    "Inbox events given up after their last attempt, by source and kind.",
    ["source", "kind"],
)

# --- Read from the database by beat (a periodic task), never per scrape -----------------------
# "mostrecent": the value the last reading process wrote, whichever process that was.
INBOX_EVENTS = Gauge(
    "crm_inbox_events",
    "Inbox events by status, as the last backlog reading found them.",
    ["status"],
    multiprocess_mode="mostrecent",
)
CAMPAIGN_SEND_ROWS = Gauge(
    "crm_campaign_send_rows",
    "Campaign send rows by status, as the last backlog reading found them.",
    ["status"],
    multiprocess_mode="mostrecent",
)
FOLLOWUP_ROWS = Gauge(
    "crm_followup_rows",
    "Follow-up tasks by status, as the last backlog reading found them.",
    ["status"],
    multiprocess_mode="mostrecent",
)
NOTIFICATION_ROWS = Gauge(
    "crm_notification_rows",
    "Outbound notifications by status, as the last backlog reading found them.",
    ["status"],
    multiprocess_mode="mostrecent",
)
BACKLOG_READ_AT = Gauge(
    "crm_backlog_read_timestamp_seconds",
    "Unix time of the last backlog reading (a stale one means beat or the workers stopped).",
    multiprocess_mode="mostrecent",
)
WORKERS_ALIVE = Gauge(
    "crm_workers_alive",
    "Workers whose heartbeat is recent, as the last backlog reading found them.",
    multiprocess_mode="mostrecent",
)
WORKER_HEARTBEAT_AT = Gauge(
    "crm_worker_heartbeat_timestamp_seconds",
    "Unix time of the newest heartbeat any worker recorded, as the last backlog reading found it.",
    multiprocess_mode="mostrecent",
)

# --- Sending ------------------------------------------------------------------------------------
CAMPAIGN_SENDS = Counter(
    "crm_campaign_sends",
    "Campaign messages settled by a send batch, by outcome (sent, failed, unknown, pending).",
    ["outcome"],
)
MAIL_SEND_SECONDS = Histogram(
    "crm_mail_send_seconds",
    "Time one message took to hand to the mail system (SMTP or an HTTP API), by outcome.",
    ["outcome"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)
NOTIFICATION_DELIVERIES = Counter(
    "crm_notification_deliveries",
    "Attempts at outbound notifications, by outcome.",
    ["outcome"],
)

# --- Mailboxes ----------------------------------------------------------------------------------
IMAP_POLLS = Counter(
    "crm_imap_polls",
    "IMAP mailbox polls, by outcome (read, or skipped: another poller held it, or it failed).",
    ["outcome"],
)
IMAP_MESSAGES = Counter(
    "crm_imap_messages",
    "Messages read from IMAP mailboxes, by result (stored, duplicate).",
    ["result"],
)

_BACKLOG_GAUGES: Mapping[str, Gauge] = {
    "inbox events": INBOX_EVENTS,
    "campaign sends": CAMPAIGN_SEND_ROWS,
    "follow-ups": FOLLOWUP_ROWS,
    "notifications": NOTIFICATION_ROWS,
}
_sources: set[str] = set()
_sources_lock = threading.Lock()


def source_label(name: str | None) -> str:
    """``name`` as a label value: at most ``MAX_SOURCES`` distinct ones per process."""
    if not name:
        return NONE
    if name in _sources:
        return name
    with _sources_lock:
        if len(_sources) >= MAX_SOURCES:
            return OTHER
        _sources.add(name)
    return name


def kind_label(kind: str | None) -> str:
    """A kind as a label value (the caller has checked it is a known kind)."""
    return kind or NONE


def record_backlog(
    backlog: Mapping[str, Mapping[str, int]],
    *,
    statuses: Mapping[str, tuple[str, ...]],
    workers_alive: int,
    now: float,
) -> None:
    """Set the backlog gauges from one reading of ``crm_core.ops.services.backlog``.

    Every status in ``statuses`` is set, 0 when it has no rows, so a status that emptied
    does not keep its last count.
    """
    for table, gauge in _BACKLOG_GAUGES.items():
        counts = backlog.get(table, {})
        for status in {*statuses.get(table, ()), *counts}:
            gauge.labels(status=status).set(counts.get(status, 0))
    WORKERS_ALIVE.set(workers_alive)
    BACKLOG_READ_AT.set(now)


def registry() -> CollectorRegistry:
    """What to expose: every process's values from the shared directory, else this process's."""
    directory = multiprocess_dir()
    if directory is None:
        return PROCESS_REGISTRY
    collected = CollectorRegistry()
    multiprocess.MultiProcessCollector(collected, path=str(directory))
    return collected


def exposition() -> bytes:
    """The text exposition format of ``registry()``."""
    return generate_latest(registry())


def serve(port: int, *, address: str = "0.0.0.0") -> bool:  # noqa: S104 (a scrape port)
    """Serve ``registry()`` on ``port`` from a daemon thread; ``False`` (logged) when it cannot."""
    try:
        start_http_server(port, addr=address, registry=registry())
    except OSError as exc:
        log.error("metrics port %s could not be opened: %s", port, exc)
        return False
    log.info("metrics served on port %s", port)
    return True


def process_exited(pid: int) -> None:
    """Forget a dead process's live gauges (gunicorn's ``child_exit``; Celery's pool)."""
    if multiprocess_dir() is not None:
        multiprocess.mark_process_dead(pid)


def remove_stale_files() -> int:
    """Delete the value files of processes no longer running; how many went.

    Called as a process tree starts (gunicorn's master, a Celery worker, ``crm dev``), so a
    restart does not add the last run's counts to this one's. The files of live processes
    stay, so processes of several kinds can share one directory.
    """
    directory = multiprocess_dir()
    if directory is None or not directory.is_dir():
        return 0
    removed = 0
    for path in directory.glob("*.db"):
        pid = path.stem.rpartition("_")[2]
        if pid.isdigit() and not _running(int(pid)):
            path.unlink(missing_ok=True)
            removed += 1
    return removed


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True
