"""What the workers record for the operator: heartbeats and the event-rate rollup."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Integer
from sqlalchemy.orm import Mapped, mapped_column

from crm_core.db import Base, str40, str255


class WorkerHeartbeat(Base):
    """One row per worker host name, refreshed by the periodic heartbeat task."""

    __tablename__ = "worker_heartbeats"

    hostname: Mapped[str255] = mapped_column(primary_key=True)
    pid: Mapped[int] = mapped_column(Integer)
    last_seen_at: Mapped[dt.datetime]
    beats: Mapped[int] = mapped_column(Integer, default=0)


class EventRateBucket(Base):
    """How many inbox events of a kind and status arrived in one closed bucket of time.

    Filled by beat's rollup (``crm_core.ops.rollup``), recounted rather than incremented, so
    that the overview reads a day of rates from a few hundred rows instead of the inbox.
    """

    __tablename__ = "event_rate_buckets"

    bucket_start: Mapped[dt.datetime] = mapped_column(primary_key=True)
    kind: Mapped[str40] = mapped_column(primary_key=True)
    status: Mapped[str40] = mapped_column(primary_key=True)
    count: Mapped[int] = mapped_column(Integer)


class RollupWatermark(Base):
    """Up to when a rollup has counted: everything before ``counted_until`` is in its table."""

    __tablename__ = "rollup_watermarks"

    name: Mapped[str40] = mapped_column(primary_key=True)
    counted_until: Mapped[dt.datetime]
