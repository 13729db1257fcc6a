"""The event-rate rollup: inbox events counted per quarter hour, kind and status, kept in
``event_rate_buckets`` so that the overview reads a day of rates from a few hundred rows.

Beat recounts closed buckets (never the current one) and replaces their rows, so a run
repeated, lost or overlapping another changes nothing. Each run recounts the buckets from
the watermark on, plus the last ``RECOUNT_BUCKETS`` before it: an event's status settles
within minutes of its arrival, and those minutes fall in buckets recounted again. A status
that changes later (a retry hours after, an operator's replay) is caught by the full
recount, which beat runs hourly over the whole retained window. Workers never touch these
rows: there is no counter to contend for.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from typing import Any

from sqlalchemy import ColumnElement, Integer, cast, delete, func, insert, select
from sqlalchemy.orm import Session

from crm_core.db import dialect_insert
from crm_core.ingestion.models import EventStatus, InboxEvent
from crm_core.ops.models import EventRateBucket, RollupWatermark

BUCKET_SECONDS = 900
RECOUNT_BUCKETS = 2
# Two days: a day of rates for the overview, whatever the hour, and some to spare.
KEEP = dt.timedelta(hours=48)
WATERMARK = "event_rates"
NEVER = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)

Counts = dict[tuple[dt.datetime, str, str], int]


def bucket_floor(moment: dt.datetime, seconds: int = BUCKET_SECONDS) -> dt.datetime:
    """The start of the bucket (on the clock: :00, :15…) that ``moment`` falls in."""
    return dt.datetime.fromtimestamp(int(moment.timestamp()) // seconds * seconds, dt.UTC)


def _epoch_seconds(session: Session, column: Any) -> ColumnElement[int]:
    if session.get_bind().dialect.name == "postgresql":
        return cast(func.floor(func.extract("epoch", column)), Integer)
    return cast(func.strftime("%s", column), Integer)


def count_events(
    session: Session, *, since: dt.datetime, until: dt.datetime | None, seconds: int
) -> Counts:
    """Inbox events received from ``since`` (a bucket start) to ``until`` (open-ended when
    ``None``), counted by the start of their bucket, kind and status: one grouped query.

    The status filter lists every status so that PostgreSQL walks the
    ``(status, received_at)`` index instead of the whole inbox.
    """
    start = int(since.timestamp())
    bucket = cast(
        func.floor((_epoch_seconds(session, InboxEvent.received_at) - start) / seconds), Integer
    )
    query = select(bucket, InboxEvent.kind, InboxEvent.status, func.count()).where(
        InboxEvent.status.in_([s.value for s in EventStatus]),
        InboxEvent.received_at >= since,
    )
    if until is not None:
        query = query.where(InboxEvent.received_at < until)
    counts: Counts = defaultdict(int)
    for index, kind, status, total in session.execute(
        query.group_by(bucket, InboxEvent.kind, InboxEvent.status)
    ):
        began = since + dt.timedelta(seconds=max(int(index), 0) * seconds)
        counts[began, str(kind), str(status)] += int(total)
    return dict(counts)


def _claim_watermark(session: Session) -> RollupWatermark:
    """The rollup's watermark row, locked until the transaction ends (created if missing)."""
    session.execute(
        dialect_insert(session, RollupWatermark)
        .values(name=WATERMARK, counted_until=NEVER)
        .on_conflict_do_nothing()
    )
    return session.scalars(
        select(RollupWatermark).where(RollupWatermark.name == WATERMARK).with_for_update()
    ).one()


def counted_until(session: Session) -> dt.datetime | None:
    """Up to when the rollup has counted (``None`` before its first run)."""
    found = session.scalar(
        select(RollupWatermark.counted_until).where(RollupWatermark.name == WATERMARK)
    )
    return None if found is None or found <= NEVER else found


def roll_up_event_rates(
    session: Session, *, now: dt.datetime, recount: int = RECOUNT_BUCKETS, keep: dt.timedelta = KEEP
) -> int:
    """Recount the closed buckets from the watermark on (and ``recount`` before it), replace
    their rows and move the watermark to the current bucket; drop rows older than ``keep``.

    Returns how many buckets were recounted. Runs in the caller's transaction, which holds
    the watermark's row lock: two runs at once take turns.
    """
    current = bucket_floor(now)
    oldest = bucket_floor(now - keep)
    mark = _claim_watermark(session)
    begin = min(mark.counted_until, current) - dt.timedelta(seconds=recount * BUCKET_SECONDS)
    begin = max(begin, oldest)
    if begin < current:
        counts = count_events(session, since=begin, until=current, seconds=BUCKET_SECONDS)
        window = (EventRateBucket.bucket_start >= begin, EventRateBucket.bucket_start < current)
        session.execute(delete(EventRateBucket).where(*window))
        if counts:
            rows = [
                {"bucket_start": at, "kind": kind, "status": status, "count": total}
                for (at, kind, status), total in sorted(counts.items())
            ]
            session.execute(insert(EventRateBucket), rows)
    session.execute(delete(EventRateBucket).where(EventRateBucket.bucket_start < oldest))
    mark.counted_until = max(mark.counted_until, current)
    session.flush()
    return max(0, int((current - begin).total_seconds()) // BUCKET_SECONDS)


def full_recount(keep: dt.timedelta = KEEP) -> int:
    """The ``recount`` that covers every retained bucket."""
    return int(keep.total_seconds()) // BUCKET_SECONDS


def rolled_up(session: Session, *, since: dt.datetime, until: dt.datetime) -> Counts:
    """The stored counts of the buckets from ``since`` to ``until``."""
    rows = session.execute(
        select(
            EventRateBucket.bucket_start,
            EventRateBucket.kind,
            EventRateBucket.status,
            EventRateBucket.count,
        ).where(EventRateBucket.bucket_start >= since, EventRateBucket.bucket_start < until)
    )
    return {(at, kind, status): int(total) for at, kind, status, total in rows}
