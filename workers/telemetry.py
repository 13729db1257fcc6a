"""What a worker process tells its operators: log lines with their context, and metrics.

Connected to Celery's signals when ``workers.app`` is imported:

- ``setup_logging``: the worker and beat log as every process does (``crm_core.ops.logs``),
  JSON or console, instead of Celery's own format.
- ``before_task_publish``: a message published while a request id is known (in a web
  request, or in a task that came from one) carries it in its ``crm_request_id`` header.
  ``workers.publish.enqueue_events`` adds ``crm_request_ids``: each event's own request.
- ``task_prerun`` / ``task_postrun``: every line a task logs carries its ``task_id`` and the
  request id it was published with; ``event_context`` adds an event's id, source and kind.
- ``worker_init`` / ``worker_ready``: stale metric files go, and the worker serves its
  metrics on ``CRM_METRICS_PORT`` when set.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import Token
from email.message import EmailMessage
from types import TracebackType
from typing import Any, Self

from celery import Task
from celery.signals import (
    before_task_publish,
    setup_logging,
    task_postrun,
    task_prerun,
    worker_init,
    worker_process_shutdown,
    worker_ready,
)

from crm_core.config import get_settings
from crm_core.db import utcnow
from crm_core.mail_transport.base import MailBackend
from crm_core.ops import logs, metrics
from crm_core.ops.services import EventFacts

log = logging.getLogger(__name__)
REQUEST_ID_HEADER = "crm_request_id"
REQUEST_IDS_HEADER = "crm_request_ids"
_task_tokens: dict[str, dict[str, Token[Any]]] = {}


@setup_logging.connect
def _configure_logging(loglevel: str | int | None = None, **_kwargs: object) -> None:
    settings = get_settings()
    logs.configure_logging(
        format=settings.resolved_log_format(),
        level=loglevel or settings.log_level,
        process="worker",
    )


@before_task_publish.connect
def _carry_request_id(headers: dict[str, Any] | None = None, **_kwargs: object) -> None:
    request_id = logs.current("request_id")
    if headers is not None and request_id and REQUEST_ID_HEADER not in headers:
        headers[REQUEST_ID_HEADER] = request_id


@task_prerun.connect
def _bind_task(task_id: str | None = None, task: Task | None = None, **_kwargs: object) -> None:
    if task_id is None or task is None:
        return
    request_id = logs.sane_request_id(message_header(task, REQUEST_ID_HEADER))
    _task_tokens[task_id] = logs.bind(task_id=task_id, request_id=request_id)


@task_postrun.connect
def _unbind_task(task_id: str | None = None, **_kwargs: object) -> None:
    tokens = _task_tokens.pop(task_id or "", None)
    if tokens:
        # ValueError: bound in another context (a thread pool's other thread).
        with contextlib.suppress(ValueError):
            logs.unbind(tokens)


@worker_init.connect
def _clear_stale_metrics(**_kwargs: object) -> None:
    removed = metrics.remove_stale_files()
    if removed:
        log.info("removed %d metric files of processes no longer running", removed)


@worker_ready.connect
def _serve_metrics(**_kwargs: object) -> None:
    port = get_settings().metrics_port
    if port:
        metrics.serve(port)


@worker_process_shutdown.connect
def _forget_pool_process(**_kwargs: object) -> None:
    metrics.process_exited(os.getpid())


def message_header(task: Task, name: str) -> Any:
    """A header of the message the task runs for (a worker's request has it as an attribute,
    a task run in-process with ``apply`` in its ``headers``)."""
    value = task.request.get(name)
    if value is None:
        value = (task.request.get("headers") or {}).get(name)
    return value


def request_id_of(task: Task, event_id: int) -> str | None:
    """The id of the web request that stored ``event_id``, as the task's message carries it."""
    per_event = message_header(task, REQUEST_IDS_HEADER)
    found = per_event.get(str(event_id)) if isinstance(per_event, Mapping) else None
    return logs.sane_request_id(found) or logs.current("request_id")


@contextmanager
def event_context(task: Task, event_id: int, facts: EventFacts | None) -> Iterator[None]:
    """Lines logged in the block carry the event's id, source, kind and request id."""
    fields: dict[str, Any] = {"event_id": event_id, "request_id": request_id_of(task, event_id)}
    if facts is not None:
        fields.update(source=facts.source, kind=facts.kind)
    with logs.log_context(**fields):
        yield


def observe_event(task: Task, event_id: int, facts: EventFacts | None, outcome: str) -> None:
    """Count how the event ended, how long it waited, and log one line saying so."""
    source = metrics.source_label(facts.source if facts else None)
    kind = metrics.kind_label(facts.kind if facts else None)
    metrics.EVENTS_PROCESSED.labels(source=source, kind=kind, outcome=outcome).inc()
    if outcome == "dead":
        metrics.EVENTS_DEAD.labels(source=source, kind=kind).inc()
    waited = None
    if facts is not None and outcome == "processed":
        waited = max((utcnow() - facts.received_at).total_seconds(), 0.0)
        metrics.EVENT_LAG_SECONDS.labels(kind=kind).observe(waited)
    with event_context(task, event_id, facts):
        log.info(
            "event %s %s",
            event_id,
            outcome,
            extra={"outcome": outcome, "waited_seconds": waited},
        )


def count_sends(outcomes: list[Any]) -> None:
    """Count a send batch's settled rows by outcome (their ``status``)."""
    for outcome in outcomes:
        metrics.CAMPAIGN_SENDS.labels(outcome=str(outcome.status)).inc()


class TimedBackend:
    """A mail backend whose every ``send`` is timed into ``crm_mail_send_seconds``."""

    def __init__(self, backend: MailBackend) -> None:
        self._backend = backend

    def send(self, message: EmailMessage, *, idempotency_key: str | None = None) -> str:
        started = time.perf_counter()
        outcome = "error"
        try:
            message_id = self._backend.send(message, idempotency_key=idempotency_key)
            outcome = "ok"
            return message_id
        finally:
            elapsed = time.perf_counter() - started
            metrics.MAIL_SEND_SECONDS.labels(outcome=outcome).observe(elapsed)

    def open(self) -> None:
        self._backend.open()

    def close(self) -> None:
        self._backend.close()

    def limit_to(self, deadline: float | None) -> None:
        self._backend.limit_to(deadline)

    def __enter__(self) -> Self:
        self.open()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._backend, name)
