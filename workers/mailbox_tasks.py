"""Mailbox polling tasks: beat fans out one poll per mailbox; a lease keeps it to one poller."""

from __future__ import annotations

import datetime as dt
import os
import socket
import uuid

from crm_core.config import Settings
from crm_core.mail.parsed import MailLimits
from crm_core.mailboxes.polling import PollLimits, poll_mailbox
from crm_core.mailboxes.services import enabled_mailbox_ids
from crm_core.ops import metrics
from workers.app import celery_app
from workers.db import CrmTask
from workers.publish import enqueue_events

# FETCH rounds per poll: a mailbox far behind is read over several polls, each
# well inside the task time limit, the next one published at once.
BATCHES_PER_POLL = 20


def poll_limits(settings: Settings) -> PollLimits:
    """The reader's limits, from the settings."""
    return PollLimits(
        batch_size=settings.imap_batch_size,
        max_bytes=settings.imap_max_message_bytes,
        limit=settings.imap_batch_size * BATCHES_PER_POLL,
        timeout=settings.imap_timeout_seconds,
        # A poller killed with its task is replaced once its lease runs out.
        lease_ttl=dt.timedelta(seconds=settings.task_time_limit_seconds),
        mail=MailLimits.from_settings(settings),
    )


@celery_app.task(bind=True, name="crm.mailboxes.poll_all")
def poll_all(self: CrmTask) -> int:
    """Publish a poll of every enabled mailbox; how many were published."""
    with self.session() as session:
        mailbox_ids = enabled_mailbox_ids(session)
    for mailbox_id in mailbox_ids:
        poll.delay(mailbox_id)
    return len(mailbox_ids)


@celery_app.task(bind=True, name="crm.mailboxes.poll")
def poll(self: CrmTask, mailbox_id: int) -> str:
    """Read mailbox ``mailbox_id``'s new messages into the inbox, unless another poller is."""
    owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:12]}"
    result = poll_mailbox(
        self.session,
        mailbox_id=mailbox_id,
        owner=owner,
        publish=_publish,
        limits=poll_limits(self.settings),
    )
    if result is None:
        metrics.IMAP_POLLS.labels(outcome="skipped").inc()
        return "skipped or failed: see the mailbox's last_error"
    metrics.IMAP_POLLS.labels(outcome="read").inc()
    metrics.IMAP_MESSAGES.labels(result="stored").inc(result.stored)
    metrics.IMAP_MESSAGES.labels(result="duplicate").inc(result.duplicates)
    if result.more:
        poll.delay(mailbox_id)
    return f"stored {result.stored}, duplicates {result.duplicates}"


def _publish(event_id: int) -> bool:
    """Publish one stored message's event at once (the poll goes on with the next)."""
    return enqueue_events([event_id]) == 1
