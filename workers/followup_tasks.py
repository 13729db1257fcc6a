"""Follow-up rules and outbound notifications: evaluated and sent by beat's schedule."""

from __future__ import annotations

import logging
import time

from crm_core.config import Settings
from crm_core.followups.rules import RulesError, RuleSet, load_rules
from crm_core.followups.services import evaluate
from crm_core.notifications.posting import SendSettings, deliver_due
from crm_core.ops import metrics
from workers.app import celery_app
from workers.db import CrmTask

log = logging.getLogger(__name__)
# Deliveries claimed at a time: a claim's lease must outlast posting all of them.
DELIVERIES_PER_CLAIM = 10
# A run stops claiming after this share of the task time limit: a slow receiver
# (every POST up to its timeouts) never gets the task killed mid-attempt.
RUN_BUDGET_SHARE = 0.5


def rules(settings: Settings) -> RuleSet:
    """The configured rules, read on every evaluation so an edit needs no restart."""
    return load_rules(settings.followup_rules)


def send_settings(settings: Settings) -> SendSettings:
    return SendSettings(
        allow_private=settings.notify_allow_private,
        connect_timeout=settings.notify_connect_timeout_seconds,
        read_timeout=settings.notify_read_timeout_seconds,
        max_attempts=settings.notify_max_attempts,
        backoff_max=settings.notify_backoff_max_seconds,
        # Long enough to post a whole claim at worst; a worker killed mid-POST
        # leaves its deliveries to be tried again after this.
        lease_seconds=DELIVERIES_PER_CLAIM
        * (settings.notify_connect_timeout_seconds + settings.notify_read_timeout_seconds)
        + 60,
    )


@celery_app.task(bind=True, name="crm.followups.evaluate")
def evaluate_followups(self: CrmTask) -> int:
    """Fire every rule on its due subjects; how many fired. Each fires once per subject."""
    settings = self.settings
    try:
        ruleset = rules(settings)
    except RulesError as exc:
        log.error("follow-up rules not evaluated: %s", exc)
        return 0
    with self.session() as session:
        fired = evaluate(
            session, ruleset, sender=settings.mail_from, limit=settings.followup_batch_size
        )
    if any(f.notification_ids for f in fired):
        _publish("crm.notifications.deliver")
    if any(f.email_activity_id for f in fired):
        _publish("crm.mail.send_pending")
    return len(fired)


@celery_app.task(bind=True, name="crm.notifications.deliver")
def deliver_notifications(self: CrmTask) -> dict[str, int]:
    """One attempt at each notification that is due, for a bounded time; counts by outcome."""
    settings = send_settings(self.settings)
    per_post = settings.connect_timeout + settings.read_timeout
    budget = (celery_app.conf.task_time_limit or 300) * RUN_BUDGET_SHARE
    deadline = time.monotonic() + max(budget - DELIVERIES_PER_CLAIM * per_post, per_post)
    totals: dict[str, int] = {}
    while True:
        counts = deliver_due(self.sessions, settings=settings, limit=DELIVERIES_PER_CLAIM)
        for outcome, n in counts.items():
            totals[outcome] = totals.get(outcome, 0) + n
            metrics.NOTIFICATION_DELIVERIES.labels(outcome=outcome).inc(n)
        if sum(counts.values()) < DELIVERIES_PER_CLAIM or time.monotonic() > deadline:
            return totals


def _publish(name: str) -> None:
    """Save beat's wait; beat runs the task soon anyway, so a failure is only logged."""
    try:
        celery_app.send_task(name)
    except Exception as exc:  # any transport failure: beat runs it later
        log.warning("could not publish %s: %s: %s", name, type(exc).__name__, exc)
