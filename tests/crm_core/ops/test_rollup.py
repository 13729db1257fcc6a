"""The event-rate rollup: closed buckets recounted idempotently, the overview's numbers equal
to a direct count of the inbox, statuses changed late caught as documented."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from crm_core.ingestion.models import InboxEvent
from crm_core.ops import dashboard, rollup
from crm_core.ops.models import EventRateBucket
from tests.factories import InboxEventFactory, SourceFactory

NOW = dt.datetime(2026, 12, 3, 12, 7, tzinfo=dt.UTC)  # the bucket of 12:00 is open
HOUR = dt.timedelta(hours=1)


def stored(session: Session) -> dict[tuple[dt.datetime, str, str], int]:
    rows = session.execute(
        select(
            EventRateBucket.bucket_start,
            EventRateBucket.kind,
            EventRateBucket.status,
            EventRateBucket.count,
        )
    )
    return {(at, kind, status): count for at, kind, status, count in rows}


def a_day_of_events(session: Session) -> list[InboxEvent]:
    source = SourceFactory()
    events = []
    for minutes, kind, status in [
        (3, "leads", "received"),  # 12:04, the open bucket
        (9, "leads", "processed"),  # 11:58
        (9, "orders", "failed"),
        (20, "leads", "processed"),  # 11:47
        (200, "leads", "dead"),  # 08:47
        (23 * 60 + 30, "emails", "processed"),  # 12:37 yesterday
        (30 * 60, "leads", "processed"),  # before the day
    ]:
        at = NOW - dt.timedelta(minutes=minutes)
        events.append(InboxEventFactory(source=source, kind=kind, status=status, received_at=at))
    session.flush()
    return events


def test_the_overview_reads_the_same_numbers_as_a_direct_count(session: Session) -> None:
    a_day_of_events(session)
    direct = dashboard.event_rates(session, now=NOW).counts  # nothing rolled up: all live
    assert rollup.roll_up_event_rates(session, now=NOW) == 48 * 4  # the first run: all kept
    assert rollup.counted_until(session) == dt.datetime(2026, 12, 3, 12, 0, tzinfo=dt.UTC)
    rows = stored(session)
    assert rows[dt.datetime(2026, 12, 3, 11, 45, tzinfo=dt.UTC), "leads", "processed"] == 2
    assert not [key for key in rows if key[0] >= rollup.bucket_floor(NOW)]  # the open one is not
    assert dashboard.event_rates(session, now=NOW).counts == direct
    assert direct[96, "leads", "received"] == 1  # the open bucket, read live
    assert direct[95, "leads", "processed"] == 2


def test_a_repeated_run_changes_nothing(session: Session) -> None:
    a_day_of_events(session)
    rollup.roll_up_event_rates(session, now=NOW)
    first = stored(session)
    assert rollup.roll_up_event_rates(session, now=NOW) == rollup.RECOUNT_BUCKETS
    assert rollup.roll_up_event_rates(session, now=NOW, recount=rollup.full_recount()) == 192
    assert stored(session) == first


def test_the_next_bucket_is_counted_once_it_closes(session: Session) -> None:
    events = a_day_of_events(session)
    rollup.roll_up_event_rates(session, now=NOW)
    later = NOW + dt.timedelta(minutes=10)  # 12:17: the bucket of 12:00 has closed
    assert rollup.roll_up_event_rates(session, now=later) == 1 + rollup.RECOUNT_BUCKETS
    noon = dt.datetime(2026, 12, 3, 12, 0, tzinfo=dt.UTC)
    assert stored(session)[noon, "leads", "received"] == 1
    assert events[0].received_at >= noon
    assert rollup.counted_until(session) == noon + dt.timedelta(minutes=15)
    direct = rollup.count_events(session, since=noon - 24 * HOUR, until=None, seconds=900)
    rates = dashboard.event_rates(session, now=later)
    assert sum(rates.counts.values()) == sum(direct.values()) == 6


def test_a_status_changed_soon_after_arrival_is_caught_by_the_next_run(session: Session) -> None:
    events = a_day_of_events(session)
    rollup.roll_up_event_rates(session, now=NOW)
    events[2].status = "processed"  # 11:58's failed order, retried
    session.flush()
    rollup.roll_up_event_rates(session, now=NOW + dt.timedelta(minutes=1))
    rates = dashboard.event_rates(session, now=NOW + dt.timedelta(minutes=1))
    assert rates.counts[95, "orders", "processed"] == 1
    assert (95, "orders", "failed") not in rates.counts


def test_a_status_changed_hours_later_waits_for_the_full_recount(session: Session) -> None:
    events = a_day_of_events(session)
    rollup.roll_up_event_rates(session, now=NOW)
    events[4].status = "processed"  # 08:47's dead lead, replayed
    session.flush()
    rollup.roll_up_event_rates(session, now=NOW)
    assert dashboard.event_rates(session, now=NOW).counts[83, "leads", "dead"] == 1
    rollup.roll_up_event_rates(session, now=NOW, recount=rollup.full_recount())
    rates = dashboard.event_rates(session, now=NOW)
    assert rates.counts[83, "leads", "processed"] == 1
    assert (83, "leads", "dead") not in rates.counts


def test_buckets_beyond_the_kept_window_are_dropped(session: Session) -> None:
    a_day_of_events(session)
    rollup.roll_up_event_rates(session, now=NOW)
    rollup.roll_up_event_rates(session, now=NOW + 20 * HOUR)
    oldest = session.scalar(select(func.min(EventRateBucket.bucket_start)))
    assert oldest is not None
    assert oldest >= rollup.bucket_floor(NOW + 20 * HOUR - rollup.KEEP)


def test_other_bucket_sizes_are_counted_from_the_inbox(session: Session) -> None:
    a_day_of_events(session)
    rollup.roll_up_event_rates(session, now=NOW)
    session.execute(EventRateBucket.__table__.delete())  # a rollup read would now find nothing
    rates = dashboard.event_rates(session, now=NOW, bucket_seconds=3600)
    assert sum(rates.counts.values()) == 6
