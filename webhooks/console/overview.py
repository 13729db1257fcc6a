"""The overview (``/console/``): what is waiting, what failed, which workers are alive."""

from __future__ import annotations

import datetime as dt

from flask import Blueprint, render_template

from crm_core.ops.services import backlog, live_workers
from crm_core.people.permissions import Permission
from webhooks.console.access import console_route
from webhooks.state import crm_state

bp = Blueprint("overview", __name__)

HEARTBEAT_WINDOW = dt.timedelta(minutes=2)


@bp.get("/")
@console_route(Permission.READ)
def index() -> str:
    """The overview page."""
    with crm_state().sessions() as db:
        counts = backlog(db)
        workers = live_workers(db, within=HEARTBEAT_WINDOW)
        return render_template("console/overview.html", backlog=counts, workers=workers)
