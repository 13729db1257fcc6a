"""Request ids, the intake's metrics and ``GET /metrics``.

Every request gets an id: the client's ``X-Request-ID`` when it is sane, else a new one. It is
on every line logged while the request runs, in the answer's ``X-Request-ID`` header, and in
the task messages the request causes (``workers.telemetry``), so the worker's lines about an
event carry the request that stored it. The intake routes say which source, kind and event
a request was about (``note``); each webhook answer is then counted and timed, and logged in
one line.

``/metrics`` is the Prometheus exposition of every process sharing the metrics directory,
for an admin key; ``CRM_METRICS_PORT`` serves the same without a key on a port of its own.
"""

from __future__ import annotations

import logging
import time
import uuid
from typing import Any

from flask import Blueprint, Flask, Response, g, request
from prometheus_client import CONTENT_TYPE_LATEST

from crm_core.config import Settings
from crm_core.ops import logs, metrics
from webhooks.auth import require_api_key
from webhooks.openapi.registry import Body, documented

log = logging.getLogger(__name__)
bp = Blueprint("metrics", __name__)
REQUEST_ID = "X-Request-ID"
# The routes that take webhooks (and form posts): each answer is counted by source and kind.
INTAKE_ENDPOINTS = frozenset(
    {"intake.receive", "intake.receive_from_provider", "forms.receive_form"}
)
_STARTED = "crm_started"
_TOKENS = "crm_log_tokens"


def note(**fields: Any) -> None:
    """What the current request is about (``source``, ``kind``, ``event_id``): on its log
    lines from now on, and on its webhook metrics."""
    tokens: list[Any] = g.setdefault(_TOKENS, [])
    tokens.append(logs.bind(**fields))


def _begin() -> None:
    g.setdefault(_STARTED, time.perf_counter())
    request_id = logs.sane_request_id(request.headers.get(REQUEST_ID)) or uuid.uuid4().hex
    note(request_id=request_id)


def _finish(response: Response) -> Response:
    request_id = logs.current("request_id")
    if request_id:
        response.headers[REQUEST_ID] = request_id
    if request.endpoint in INTAKE_ENDPOINTS:
        _count_intake(response.status_code)
    return response


def _count_intake(code: int) -> None:
    source = metrics.source_label(logs.current("source"))
    kind = metrics.kind_label(logs.current("kind"))
    metrics.WEBHOOKS_RECEIVED.labels(source=source, kind=kind, code=str(code)).inc()
    started = g.get(_STARTED)
    if started is not None:
        metrics.INTAKE_SECONDS.observe(time.perf_counter() - started)
    log.info("webhook answered %s", code, extra={"status": code})


def _end(_exc: BaseException | None) -> None:
    for tokens in reversed(g.pop(_TOKENS, [])):
        try:
            logs.unbind(tokens)
        except ValueError:  # set in another context: nothing of it is left here
            break


@bp.get("/metrics")
@documented(
    summary="Prometheus metrics of every process sharing the metrics directory",
    responses={
        200: Body(
            {"type": "string"},
            media_types=(CONTENT_TYPE_LATEST.split(";")[0],),
            description="The text exposition format (version 0.0.4).",
        )
    },
    tags=("operations",),
)
@require_api_key
def show_metrics() -> Response:
    """The counters, histograms and gauges, added up across processes."""
    return Response(metrics.exposition(), content_type=CONTENT_TYPE_LATEST)


def init_app(app: Flask, settings: Settings) -> None:
    """Give every request an id and count the intake's answers; serve ``/metrics``."""
    app.before_request(_begin)
    app.after_request(_finish)
    app.teardown_request(_end)
    app.register_blueprint(bp)
