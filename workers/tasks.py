"""Task definitions. Each is a few lines: a session, a crm_core service, a commit."""

from __future__ import annotations

import datetime as dt
import enum
import logging
import os
import socket
import time
from collections import Counter

from celery.exceptions import SoftTimeLimitExceeded

from crm_core.campaigns import scheduling, sending
from crm_core.db import utcnow
from crm_core.errors import failure_trace
from crm_core.ingestion.batching import batchable, run_batch
from crm_core.ingestion.errors import PermanentError, TransientError, is_transient
from crm_core.ingestion.policy import IngestPolicy
from crm_core.ingestion.processing import (
    claim_events,
    due_for_sweep,
    record_failure,
)
from crm_core.ingestion.single_event import run_event
from crm_core.mail_transport.backends import backend_from_url
from crm_core.ops.services import event_facts, record_heartbeat
from crm_core.payloads.kinds import EventKind
from crm_core.support.pending_mail import deliver_pending, pending_deliveries
from workers.app import celery_app
from workers.db import CrmTask
from workers.publish import enqueue_events
from workers.telemetry import TimedBackend, count_sends, event_context, observe_event

log = logging.getLogger(__name__)


@celery_app.task(bind=True, name="crm.maintenance.heartbeat")
def heartbeat(self: CrmTask) -> None:
    """Record that this worker is alive (read by ``crm status``)."""
    hostname = self.request.hostname or socket.gethostname()
    with self.session() as session:
        record_heartbeat(session, hostname=hostname, pid=os.getpid())


class Outcome(enum.StrEnum):
    """How one claimed event ended in this task (the counts ``process_events`` returns)."""

    PROCESSED = "processed"
    INVALID = "invalid"
    FAILED = "failed"
    DEAD = "dead"
    RETRY = "retry"
    SKIPPED = "skipped"


def _run_claimed(task: CrmTask, event_id: int, policy: IngestPolicy) -> Outcome:
    """Process an event this worker claimed, in a transaction of its own; how it ended."""
    try:
        with task.session() as session:
            run_event(session, event_id=event_id, policy=policy)
    except SoftTimeLimitExceeded:
        # Slow, not wrong: a busy database or a long queue of locks. Retried
        # with backoff like a lost connection, and dead after the last attempt.
        return _record_failure(
            task, event_id, TransientError("took longer than the soft time limit")
        )
    except Exception as exc:
        return _record_failure(task, event_id, exc)
    return Outcome.PROCESSED


# Events one ``process_events`` message carries, at most (the web layer's bursts).
MAX_EVENTS_PER_MESSAGE = 100


@celery_app.task(bind=True, name="crm.ingest.process_events")
def process_events(self: CrmTask, event_ids: list[int]) -> dict[str, int]:
    """Turn inbox events into CRM entities, at most once in effect; how many ended how.

    The one ingest task: the web layer publishes the events a burst stored as
    one message; the sweeper, retries, replays and the mailbox poller publish
    theirs the same way. They are claimed together (one statement, one
    commit); the claim commits first so operators see ``processing``. The
    ``leads`` among them are then captured as one batch, in one transaction
    with a few statements in all (``crm_core.ingestion.batching``); if the
    batch fails as a whole (a conflict with a concurrent writer, a deadlock, a
    lost connection) it rolls back and they are processed one by one like the
    other kinds, each in its own transaction (its writes and its ``processed``
    mark commit together or not at all), so a failure is only ever that
    event's own. A worker killed half-way leaves its claimed events to the
    sweeper, which releases them after the task time limit; an event claimed
    ``CRM_MAX_ATTEMPTS`` times is then ``dead`` instead of claimed again.
    """
    if not isinstance(event_ids, list) or not all(
        isinstance(i, int) and not isinstance(i, bool) for i in event_ids
    ):
        log.error("process_events needs a list of event ids, not %.200r", event_ids)
        return {}
    wanted = event_ids[:MAX_EVENTS_PER_MESSAGE]
    # Before the claim: settings that cannot be read leave the events to the sweeper, unclaimed.
    policy = IngestPolicy.from_settings(self.settings)
    with self.session() as session:
        claimed = claim_events(
            session, event_ids=wanted, max_attempts=celery_app.conf.crm_max_attempts
        )
        facts = event_facts(session, event_ids=list(claimed))
    outcomes: Counter[Outcome] = Counter()
    if len(claimed) < len(wanted):
        outcomes[Outcome.SKIPPED] = len(wanted) - len(claimed)
    leads = [event_id for event_id, kind in claimed.items() if kind == EventKind.LEADS.value]
    batched: set[int] = set()
    if len(leads) > 1 and batchable(EventKind.LEADS):
        try:
            with self.session() as session:
                batch = run_batch(
                    session,
                    kind=EventKind.LEADS,
                    event_ids=leads,
                    policy=policy,
                )
        except Exception as exc:
            # The type alone: a message can quote the payload.
            log.warning(
                "a batch of %d lead events goes one by one: %s", len(leads), type(exc).__name__
            )
        else:
            outcomes.update(
                {Outcome.PROCESSED: len(batch.processed), Outcome.INVALID: len(batch.invalid)}
            )
            batched.update(leads)
            for done, outcome in (
                (batch.processed, Outcome.PROCESSED),
                (batch.invalid, Outcome.INVALID),
            ):
                for event_id in done:
                    observe_event(self, event_id, facts.get(event_id), outcome)
    for event_id in claimed:
        if event_id not in batched:
            with event_context(self, event_id, facts.get(event_id)):
                outcome = _run_claimed(self, event_id, policy)
            outcomes[outcome] += 1
            observe_event(self, event_id, facts.get(event_id), outcome)
    return {outcome.value: count for outcome, count in outcomes.items() if count}


def _record_failure(task: CrmTask, event_id: int, exc: Exception) -> Outcome:
    """Record why processing failed; publish the retry if one is due."""
    if not isinstance(exc, PermanentError) and not is_transient(exc):
        # The stack, not the message: a message can quote the payload.
        log.error("event %s failed (the reason is on the event)\n%s", event_id, failure_trace(exc))
    with task.session() as session:
        outcome = record_failure(
            session,
            event_id=event_id,
            exc=exc,
            max_attempts=celery_app.conf.crm_max_attempts,
            backoff_max=celery_app.conf.crm_retry_backoff_max,
        )
    if outcome.retry_in is None:
        return Outcome(outcome.status.value)
    enqueue_events([event_id], countdown=outcome.retry_in)
    return Outcome.RETRY


@celery_app.task(bind=True, name="crm.maintenance.sweep_inbox")
def sweep_inbox(self: CrmTask) -> int:
    """Publish every inbox event still waiting (broker was down, worker died, retry due)."""
    settings = self.settings
    with self.session() as session:
        due = due_for_sweep(
            session,
            received_grace=dt.timedelta(seconds=settings.sweep_grace_seconds),
            claim_timeout=dt.timedelta(seconds=celery_app.conf.task_time_limit or 300),
            republish_after=dt.timedelta(seconds=settings.sweep_republish_seconds),
        )
    return enqueue_events(due)


@celery_app.task(bind=True, name="crm.campaigns.dispatch")
def dispatch_campaigns(self: CrmTask) -> int:
    """Beat: settle crashed sends, start due campaigns, and fan out their send batches."""
    now = utcnow()
    with self.session() as session:
        recovered = scheduling.recover_stale_sending(
            session, older_than=dt.timedelta(seconds=_claim_timeout()), now=now
        )
        due = scheduling.due_campaigns(session, now=now)
    started = [campaign_id for campaign_id in due if _start_campaign(self, campaign_id, now=now)]
    if recovered:
        log.warning("%s campaign sends found sending after a crash are now unknown", recovered)
    with self.session() as session:
        scheduling.complete_finished_campaigns(session, now=now)
        stalled = scheduling.stalled_campaigns(
            session, idle_for=dt.timedelta(seconds=_claim_timeout()), now=now
        )
    for campaign_id in started:
        enqueue_send_batches(campaign_id, parallel=celery_app.conf.crm_campaign_parallel_batches)
    for campaign_id in stalled:
        enqueue_send_batches(campaign_id, parallel=1)
    return len(started)


def _start_campaign(task: CrmTask, campaign_id: int, *, now: dt.datetime) -> bool:
    """Claim and materialize one campaign in its own transaction; True if it started.

    A campaign that raises is rolled back alone and marked ``failed`` with the
    reason, so the other due campaigns still go out. A transient error (a lost
    connection, a lock) leaves it scheduled for the next tick.
    """
    try:
        with task.session() as session:
            return scheduling.start_campaign(
                session,
                campaign_id=campaign_id,
                now=now,
                require_consent=task.settings.campaigns_require_consent,
            )
    except Exception as exc:
        if is_transient(exc):
            log.warning("campaign %s not started this time: %s", campaign_id, exc)
            return False
        reason = scheduling.describe_failure(exc)
        # Bad input is told in one line; anything else is a defect worth its traceback.
        unexpected = not isinstance(exc, PermanentError)
        log.error("campaign %s failed to start: %s", campaign_id, reason, exc_info=unexpected)
    with task.session() as session:
        scheduling.fail_campaign(session, campaign_id=campaign_id, reason=reason, now=now)
    return False


@celery_app.task(bind=True, name="crm.campaigns.send_batch")
def send_batch(self: CrmTask, campaign_id: int) -> str:
    """Claim a batch of the campaign's sends, send it over one connection, record outcomes.

    The claim commits before anything is sent; the outcomes commit after. Only
    a process that dies in between leaves rows ``sending``, which the
    dispatcher turns into ``unknown``: never sent twice. Any other failure
    after the claim gives the rows back: pending, or failed with the reason
    after the attempt limit.
    """
    # Before the claim: a missing setting or a bad mail URL must leave the sends
    # pending, not claimed and then abandoned.
    settings = self.settings
    identity = sending.MailIdentity.from_settings(settings)
    backend = TimedBackend(
        backend_from_url(
            settings.resolved_mail_url(), rate_per_second=settings.mail_rate_per_second
        )
    )
    with self.session() as session:
        claimed = scheduling.claim_batch(
            session,
            campaign_id=campaign_id,
            size=celery_app.conf.crm_campaign_batch_size,
            now=utcnow(),
            secret_key=identity.secret_key,
        )
    if not claimed:
        return _finish_campaign(self, campaign_id)
    # Half the time limit: the rest of a slow batch goes back to pending for the next one.
    deadline = time.monotonic() + _claim_timeout() / 2
    try:
        with self.session() as session:
            prepared = sending.prepare_batch(
                session, campaign_id=campaign_id, claimed=claimed, identity=identity
            )
    except Exception as exc:  # nothing reached the backend: the rows go back
        log.exception("campaign %s: a batch of %d could not be prepared", campaign_id, len(claimed))
        outcomes = sending.release_unsent(claimed, scheduling.describe_failure(exc))
    else:
        outcomes = sending.deliver_batch(backend, prepared, deadline=deadline)
    count_sends(outcomes)
    with self.session() as session:
        sending.record_outcomes(
            session,
            campaign_id=campaign_id,
            outcomes=outcomes,
            max_attempts=celery_app.conf.crm_campaign_max_attempts,
            now=utcnow(),
        )
    countdown = celery_app.conf.crm_retry_backoff_max if sending.needs_backoff(outcomes) else None
    enqueue_send_batches(campaign_id, parallel=1, countdown=countdown)
    return f"{len(outcomes)} settled"


def _finish_campaign(task: CrmTask, campaign_id: int) -> str:
    with task.session() as session:
        done = scheduling.complete_if_done(session, campaign_id=campaign_id, now=utcnow())
    return "campaign sent" if done else "nothing to claim"


def _claim_timeout() -> int:
    # A batch runs inside one task; a row sending for longer than a task may
    # live belongs to a batch that died.
    return int(celery_app.conf.task_time_limit or 300)


def enqueue_send_batches(campaign_id: int, *, parallel: int, countdown: float | None = None) -> int:
    """Publish ``parallel`` send_batch tasks for the campaign; how many went (never raises).

    A lost message only delays the campaign: the dispatcher re-publishes for
    a campaign whose rows stopped being claimed.
    """
    published = 0
    for _ in range(parallel):
        try:
            send_batch.apply_async((campaign_id,), countdown=countdown)
            published += 1
        except Exception as exc:  # any transport failure: the dispatcher republishes
            log.warning("could not publish send_batch(%s): %s", campaign_id, exc)
    return published


@celery_app.task(bind=True, name="crm.mail.send_pending")
def send_pending_mail(self: CrmTask) -> int:
    """Send the outbound e-mails recorded as pending (case acknowledgements); how many went."""
    settings = self.settings
    with self.session() as session:
        pending = pending_deliveries(session)
    if not pending:
        return 0
    backend = TimedBackend(
        backend_from_url(
            settings.resolved_mail_url(), rate_per_second=settings.mail_rate_per_second
        )
    )
    outcomes = [
        deliver_pending(self.sessions, backend, activity_id=activity_id, sender=settings.mail_from)
        for activity_id in pending
    ]
    return outcomes.count("sent")
