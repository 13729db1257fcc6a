"""WorkerHeartbeat: the last time a worker process ran the heartbeat task."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Integer
from sqlalchemy.orm import Mapped, mapped_column

from crm_core.db import Base, str255


class WorkerHeartbeat(Base):
    """One row per worker host name, refreshed by the periodic heartbeat task."""

    __tablename__ = "worker_heartbeats"

    hostname: Mapped[str255] = mapped_column(primary_key=True)
    pid: Mapped[int] = mapped_column(Integer)
    last_seen_at: Mapped[dt.datetime]
    beats: Mapped[int] = mapped_column(Integer, default=0)
