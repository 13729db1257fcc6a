"""Beat's readings for the operator: the backlog into metrics (the database is counted here,
never per scrape) and the event-rate rollup the overview charts."""

from __future__ import annotations

import datetime as dt
import time

from crm_core.db import utcnow
from crm_core.ops import metrics, rollup
from crm_core.ops.services import backlog, backlog_statuses, latest_heartbeat, live_workers
from workers.app import celery_app
from workers.db import CrmTask


@celery_app.task(bind=True, name="crm.maintenance.read_backlog")
def read_backlog(self: CrmTask) -> dict[str, dict[str, int]]:
    """Set the backlog gauges (rows by table and status, live workers, the latest heartbeat)."""
    # A worker is alive when it beat within three of beat's heartbeat intervals.
    within = dt.timedelta(seconds=3 * self.settings.heartbeat_seconds)
    with self.session() as session:
        counts = backlog(session, unfinished_only=True)
        alive = len(live_workers(session, within=within))
        newest = latest_heartbeat(session)
    metrics.record_backlog(
        counts,
        statuses=backlog_statuses(unfinished_only=True),
        workers_alive=alive,
        now=time.time(),
    )
    if newest is not None:
        metrics.WORKER_HEARTBEAT_AT.set(newest.timestamp())
    return counts


@celery_app.task(bind=True, name="crm.maintenance.roll_up_event_rates")
def roll_up_event_rates(self: CrmTask, *, full: bool = False) -> int:
    """Recount the closed quarter hours of inbox events the overview charts (the last few,
    or with ``full`` every retained one, to catch statuses changed long after arrival)."""
    recount = rollup.full_recount() if full else rollup.RECOUNT_BUCKETS
    with self.session() as session:
        return rollup.roll_up_event_rates(session, now=utcnow(), recount=recount)
