"""Liveness and readiness probes.

``/readyz`` answers anyone, so it says only which check is ``ok`` and which is
``unavailable``. Why a check failed (host names, ports, "password
authentication failed for user …") is shown only to a caller with a valid API
key, and always logged.
"""

from __future__ import annotations

import logging
from typing import Any, Literal

from flask import Blueprint, Response, jsonify
from pydantic import BaseModel

from crm_core.ops.services import database_ready
from webhooks.auth import request_has_admin_key
from webhooks.openapi.registry import documented
from webhooks.problems import problem
from webhooks.state import crm_state
from workers.publish import broker_ready

log = logging.getLogger(__name__)
bp = Blueprint("health", __name__)


class Alive(BaseModel):
    status: Literal["ok"]


class Ready(BaseModel):
    status: Literal["ready"]
    checks: dict[str, Literal["ok", "unavailable"]]


@bp.get("/healthz")
@documented(
    summary="Liveness: 200 while the process lives", responses={200: Alive}, tags=("health",)
)
def healthz() -> Response:
    """200 while the process lives; checks nothing else."""
    return jsonify(status="ok")


@bp.get("/readyz")
@documented(
    summary="Readiness: the database and the broker answer",
    responses={200: Ready, 503: "Not ready: ``checks`` names what is unavailable."},
    tags=("health",),
)
def readyz() -> Response:
    """200 when the database and the broker answer, else 503 naming the checks that failed."""
    crm = crm_state()
    settings = crm.settings
    reasons = {
        "database": database_ready(crm.engine),
        "broker": broker_ready(settings.resolved_broker_url(), timeout=settings.readiness_timeout),
    }
    checks = {name: "ok" if reason is None else "unavailable" for name, reason in reasons.items()}
    failed = {name: reason for name, reason in reasons.items() if reason is not None}
    if not failed:
        return jsonify(status="ready", checks=checks)
    log.warning("not ready: %s", "; ".join(failed.values()))
    details: dict[str, Any] = {"reasons": failed} if request_has_admin_key() else {}
    detail = f"Not ready: {', '.join(failed)} unavailable."
    return problem(503, detail, title="Not ready", checks=checks, **details)
