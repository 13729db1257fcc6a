"""Inbox retention: beat drops the raw body of finished events past ``CRM_INBOX_RETENTION_DAYS``."""

from __future__ import annotations

from crm_core.db import utcnow
from crm_core.ingestion.retention import RetentionPolicy, prune_bodies
from workers.app import celery_app
from workers.db import CrmTask

# Batches one run takes at most (each its own transaction); the rest waits for the next run,
# so a first run over a large old inbox stays well inside the task time limit.
MAX_BATCHES_PER_RUN = 50


@celery_app.task(bind=True, name="crm.maintenance.prune_inbox")
def prune_inbox(self: CrmTask) -> int:
    """Drop the body of finished events past the retention, in bounded batches; how many."""
    policy = RetentionPolicy.from_settings(self.settings)
    if not policy.enabled:
        return 0
    cutoff = policy.cutoff(utcnow())
    dropped = 0
    for _ in range(MAX_BATCHES_PER_RUN):
        with self.session() as session:
            done = prune_bodies(session, cutoff=cutoff, limit=policy.batch_size)
        dropped += done
        if done < policy.batch_size:
            break
    return dropped
