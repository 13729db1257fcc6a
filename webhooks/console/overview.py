"""The overview (``/console/``): events per minute by kind and outcome over the last day, what
is waiting or went wrong, the latest events, live workers, cases past their SLA and campaigns
sending now. The page refreshes its body every few seconds (``live``) without a reload."""

from __future__ import annotations

import datetime as dt
from typing import Any

from flask import Blueprint, render_template, request

from crm_core.db import utcnow
from crm_core.ops import dashboard
from crm_core.ops.services import backlog, live_workers
from crm_core.people.permissions import Permission
from webhooks.console.access import console_route
from webhooks.console.charts import stacked_bars
from webhooks.state import crm_state

bp = Blueprint("overview", __name__)

HEARTBEAT_WINDOW = dt.timedelta(minutes=2)
BUCKET_SECONDS = 900  # a bar per quarter hour: 96 bars over the day, each a mean per minute
REFRESH_SECONDS = 5


def _overview(kind: str | None) -> dict[str, Any]:
    now = utcnow()
    with crm_state().sessions() as db:
        rates = dashboard.event_rates(db, now=now, bucket_seconds=BUCKET_SECONDS)
        breaching, late_cases = dashboard.cases_breaching_sla(db, now=now)
        context = {
            "now": now,
            "backlog": backlog(db, unfinished_only=True),
            "workers": live_workers(db, within=HEARTBEAT_WINDOW),
            "latest": dashboard.latest_events(db, limit=10),
            "breaching": breaching,
            "late_cases": late_cases,
            "sending": dashboard.campaigns_sending(db),
        }
    per_minute = BUCKET_SECONDS / 60
    series = {
        status: [count / per_minute for count in counts]
        for status, counts in rates.series(kind=kind or None).items()
    }
    context["chart"] = stacked_bars(
        series,
        start=rates.since,
        step=dt.timedelta(seconds=BUCKET_SECONDS),
        unit="events per minute",
    )
    context.update(rates=rates, totals=rates.totals(), kind=kind or "")
    context["refresh_seconds"] = REFRESH_SECONDS
    return context


@bp.get("/")
@console_route(Permission.READ)
def index() -> str:
    """The overview page."""
    return render_template("console/overview/index.html", **_overview(request.args.get("kind")))


@bp.get("/overview/live")
@console_route(Permission.READ)
def live() -> str:
    """The overview's body alone, for its live refresh."""
    return render_template("console/overview/_live.html", **_overview(request.args.get("kind")))
