"""Task definitions. Each is a few lines: a session, a crm_core service, a commit."""

from __future__ import annotations

import os
import socket

from crm_core.ops.services import record_heartbeat
from workers.app import celery_app
from workers.db import unit_of_work


@celery_app.task(name="crm.maintenance.heartbeat")
def heartbeat() -> None:
    """Record that this worker is alive (read by ``crm status``)."""
    hostname = heartbeat.request.hostname or socket.gethostname()
    with unit_of_work() as session:
        record_heartbeat(session, hostname=hostname, pid=os.getpid())
