"""Task definitions. Each is a few lines: a session, a crm_core service, a commit."""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket

from crm_core.config import get_settings
from crm_core.ingestion.errors import PermanentError, is_transient
from crm_core.ingestion.models import EventStatus
from crm_core.ingestion.pipeline import load_handlers, run_event
from crm_core.ingestion.processing import claim_event, due_for_sweep, record_failure
from crm_core.ops.services import record_heartbeat
from workers.app import celery_app
from workers.db import unit_of_work
from workers.publish import enqueue_event

log = logging.getLogger(__name__)
load_handlers()


@celery_app.task(name="crm.maintenance.heartbeat")
def heartbeat() -> None:
    """Record that this worker is alive (read by ``crm status``)."""
    hostname = heartbeat.request.hostname or socket.gethostname()
    with unit_of_work() as session:
        record_heartbeat(session, hostname=hostname, pid=os.getpid())


@celery_app.task(name="crm.ingest.process_event")
def process_event(event_id: int) -> str:
    """Turn inbox event ``event_id`` into CRM entities, at most once in effect.

    The claim commits first (so operators see ``processing``); the handler's
    writes and the ``processed`` mark commit together or not at all.
    """
    with unit_of_work() as session:
        if not claim_event(session, event_id=event_id):
            return "skipped: not waiting for processing"
    try:
        with unit_of_work() as session:
            run_event(session, event_id=event_id)
    except Exception as exc:
        return _record_failure(event_id, exc)
    return EventStatus.PROCESSED.value


def _record_failure(event_id: int, exc: Exception) -> str:
    """Record why processing failed; publish the retry if one is due."""
    if not isinstance(exc, PermanentError) and not is_transient(exc):
        log.exception("event %s failed", event_id)
    with unit_of_work() as session:
        outcome = record_failure(
            session,
            event_id=event_id,
            exc=exc,
            max_attempts=celery_app.conf.crm_max_attempts,
            backoff_max=celery_app.conf.crm_retry_backoff_max,
        )
    if outcome.retry_in is None:
        return outcome.status.value
    enqueue_event(event_id, countdown=outcome.retry_in)
    return f"retry in {outcome.retry_in:.1f}s"


@celery_app.task(name="crm.maintenance.sweep_inbox")
def sweep_inbox() -> int:
    """Publish every inbox event still waiting (broker was down, worker died, retry due)."""
    settings = get_settings()
    with unit_of_work() as session:
        due = due_for_sweep(
            session,
            received_grace=dt.timedelta(seconds=settings.sweep_grace_seconds),
            claim_timeout=dt.timedelta(seconds=celery_app.conf.task_time_limit or 300),
            republish_after=dt.timedelta(seconds=settings.sweep_republish_seconds),
        )
    return sum(enqueue_event(event_id) for event_id in due)
