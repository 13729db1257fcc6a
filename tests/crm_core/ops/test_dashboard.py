"""What the overview shows: events per bucket by kind and status, cases past their SLA."""

from __future__ import annotations

import datetime as dt

from sqlalchemy.orm import Session

from crm_core.ops import dashboard
from tests.factories import InboxEventFactory, SourceFactory, SupportCaseFactory

NOW = dt.datetime(2026, 12, 3, 12, 0, tzinfo=dt.UTC)


def test_event_rates_count_each_bucket_by_kind_and_status(session: Session) -> None:
    source = SourceFactory()
    at = NOW - dt.timedelta(minutes=20)  # 11:40, 23h40m after the start: the 95th quarter hour
    for status in ("processed", "processed", "failed"):
        InboxEventFactory(source=source, status=status, received_at=at)
    InboxEventFactory(source=source, kind="orders", status="processed", received_at=at)
    InboxEventFactory(source=source, received_at=NOW - dt.timedelta(hours=23, minutes=50))
    InboxEventFactory(source=source, received_at=NOW - dt.timedelta(hours=30))  # too old
    rates = dashboard.event_rates(session, now=NOW, bucket_seconds=900)
    assert rates.buckets == 97  # 12:00 yesterday to 12:00 today, and the one now running
    assert rates.since == NOW - dt.timedelta(hours=24)
    assert rates.counts == {
        (94, "leads", "processed"): 2,
        (94, "leads", "failed"): 1,
        (94, "orders", "processed"): 1,
        (0, "leads", "received"): 1,
    }
    assert rates.statuses == ["received", "processed", "failed"]
    assert rates.totals()[("leads", "processed")] == 2
    leads = rates.series(kind="leads")
    assert leads["processed"][94] == 2
    assert leads["received"][0] == 1
    assert rates.series()["processed"][94] == 3


def test_cases_past_a_due_time_they_have_not_met(session: Session) -> None:
    late = NOW - dt.timedelta(hours=1)
    unanswered = SupportCaseFactory(first_response_due_at=late)
    unresolved = SupportCaseFactory(first_responded_at=late, resolution_due_at=late)
    SupportCaseFactory(first_response_due_at=late, status="resolved", resolved_at=late)
    SupportCaseFactory(first_response_due_at=NOW + dt.timedelta(hours=1))
    count, cases = dashboard.cases_breaching_sla(session, now=NOW)
    assert count == 2
    assert {c.id for c in cases} == {unanswered.id, unresolved.id}


def test_the_longest_overdue_come_first_each_case_once(session: Session) -> None:
    hours = [dt.timedelta(hours=n) for n in range(6)]
    both = SupportCaseFactory(
        first_response_due_at=NOW - hours[2], resolution_due_at=NOW - hours[5]
    )
    answered = SupportCaseFactory(
        first_responded_at=NOW - hours[5],
        first_response_due_at=NOW - hours[4],
        resolution_due_at=NOW - hours[1],
    )
    unanswered = SupportCaseFactory(first_response_due_at=NOW - hours[3])
    SupportCaseFactory(status="closed", first_response_due_at=NOW - hours[5])
    count, cases = dashboard.cases_breaching_sla(session, now=NOW)
    assert count == 3
    assert [c.id for c in cases] == [both.id, unanswered.id, answered.id]
    count, cases = dashboard.cases_breaching_sla(session, now=NOW, limit=2)
    assert [c.id for c in cases] == [both.id, unanswered.id]
