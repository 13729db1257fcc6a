"""Liveness and readiness probes."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, jsonify

from crm_core.ops.services import database_ready
from webhooks.problems import problem
from workers.publish import broker_ready

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz() -> Response:
    """200 while the process lives; checks nothing else."""
    return jsonify(status="ok")


@bp.get("/readyz")
def readyz() -> Response:
    """200 when the database and the broker answer, else 503 with the reasons."""
    crm = current_app.extensions["crm"]
    settings = crm.settings
    checks = (
        database_ready(crm.engine),
        broker_ready(settings.resolved_broker_url(), timeout=settings.readiness_timeout),
    )
    failures = [reason for reason in checks if reason is not None]
    if failures:
        return problem(503, "; ".join(failures), title="Not ready", checks=failures)
    return jsonify(status="ready", checks={"database": "ok", "broker": "ok"})
