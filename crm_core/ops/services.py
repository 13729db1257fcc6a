"""Health of the record and of the worker fleet."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Engine, func, select, text
from sqlalchemy.orm import Session

from crm_core.campaigns.models import CampaignSend, SendStatus
from crm_core.db import dialect_insert, utcnow
from crm_core.errors import error_line
from crm_core.followups.models import FollowUpStatus, FollowUpTask
from crm_core.ingestion.models import EventStatus, InboxEvent, Source
from crm_core.notifications.models import DeliveryStatus, NotificationDelivery
from crm_core.ops.models import WorkerHeartbeat


def database_ready(engine: Engine) -> str | None:
    """``None`` when the database answers a query, else a one-line reason."""
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:  # any driver error means "not ready"
        return f"database unreachable: {error_line(exc, limit=200)}"
    return None


def record_heartbeat(session: Session, *, hostname: str, pid: int) -> WorkerHeartbeat:
    """Note that worker ``hostname`` is alive now."""
    now = utcnow()
    # One statement, so two processes of the same worker cannot race on the insert.
    insert = dialect_insert(session, WorkerHeartbeat).values(
        hostname=hostname, pid=pid, last_seen_at=now, beats=1
    )
    session.execute(
        insert.on_conflict_do_update(
            index_elements=[WorkerHeartbeat.hostname],
            set_={"pid": pid, "last_seen_at": now, "beats": WorkerHeartbeat.beats + 1},
        )
    )
    beat = session.get(WorkerHeartbeat, hostname, populate_existing=True)
    assert beat is not None
    return beat


def live_workers(session: Session, *, within: dt.timedelta) -> list[WorkerHeartbeat]:
    """Workers seen within ``within`` of now, most recent first."""
    since = utcnow() - within
    query = (
        select(WorkerHeartbeat)
        .where(WorkerHeartbeat.last_seen_at >= since)
        .order_by(WorkerHeartbeat.last_seen_at.desc())
    )
    return list(session.scalars(query))


# The statuses of rows still waiting or gone wrong: what the backlog gauges count. Finished
# rows (processed events, sent messages…) grow with the table and are counted by the metrics'
# counters instead, so reading the gauges stays an index lookup at any size.
UNFINISHED: dict[str, tuple[str, ...]] = {
    "inbox events": (
        EventStatus.RECEIVED,
        EventStatus.PROCESSING,
        EventStatus.INVALID,
        EventStatus.FAILED,
        EventStatus.DEAD,
    ),
    "follow-ups": (FollowUpStatus.OPEN,),
    "notifications": (DeliveryStatus.PENDING, DeliveryStatus.FAILED),
    "campaign sends": (
        SendStatus.PENDING,
        SendStatus.SENDING,
        SendStatus.FAILED,
        SendStatus.UNKNOWN,
    ),
}


def backlog(session: Session, *, unfinished_only: bool = False) -> dict[str, dict[str, int]]:
    """What is waiting or went wrong, by kind and status: one grouped count per table.

    Inbox events, follow-up tasks, outbound notifications and campaign sends; only
    statuses with rows appear. ``unfinished_only`` counts only the statuses of
    ``UNFINISHED`` (through the status indexes), for a reading taken every few seconds.
    """
    tables = {
        "inbox events": InboxEvent.status,
        "follow-ups": FollowUpTask.status,
        "notifications": NotificationDelivery.status,
        "campaign sends": CampaignSend.status,
    }
    counts: dict[str, dict[str, int]] = {}
    for name, column in tables.items():
        query = select(column, func.count()).group_by(column).order_by(column)
        if unfinished_only:
            query = query.where(column.in_([str(status) for status in UNFINISHED[name]]))
        counts[name] = {str(status): int(count) for status, count in session.execute(query)}
    return counts


@dataclass(frozen=True)
class EventFacts:
    """What a worker's metrics and log lines say about an event: no id but its own, no data."""

    kind: str
    source: str
    received_at: dt.datetime


def event_facts(session: Session, *, event_ids: Sequence[int]) -> dict[int, EventFacts]:
    """The kind, source name and arrival time of each of ``event_ids`` (one query)."""
    if not event_ids:
        return {}
    rows = session.execute(
        select(InboxEvent.id, InboxEvent.kind, Source.name, InboxEvent.received_at)
        .join(Source, Source.id == InboxEvent.source_id)
        .where(InboxEvent.id.in_(list(event_ids)))
    )
    return {
        event_id: EventFacts(kind=kind, source=source, received_at=received_at)
        for event_id, kind, source, received_at in rows
    }


def backlog_statuses(*, unfinished_only: bool = False) -> dict[str, tuple[str, ...]]:
    """Every status each table of ``backlog`` can hold, so an emptied one reads 0."""
    if unfinished_only:
        return {name: tuple(str(s) for s in statuses) for name, statuses in UNFINISHED.items()}
    return {
        "inbox events": tuple(status.value for status in EventStatus),
        "follow-ups": tuple(status.value for status in FollowUpStatus),
        "notifications": tuple(status.value for status in DeliveryStatus),
        "campaign sends": tuple(status.value for status in SendStatus),
    }


def latest_heartbeat(session: Session) -> dt.datetime | None:
    """When any worker last recorded a heartbeat; ``None`` if none ever did."""
    return session.scalar(select(func.max(WorkerHeartbeat.last_seen_at)))
