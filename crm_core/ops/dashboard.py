"""What an operator watches: events per minute by kind and outcome, the latest events, cases
past their SLA and campaigns sending now. Each is one grouped or limited query, whatever the
number of rows behind it."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import BindParameter, ColumnElement, Select, and_, bindparam, func, or_, select
from sqlalchemy.orm import InstrumentedAttribute, Session

from crm_core.campaigns.models import CampaignSend, CampaignStatus, MarketingCampaign
from crm_core.ingestion.models import EventStatus, InboxEvent, Source
from crm_core.ops import rollup
from crm_core.support.models import OPEN_CASE_STATUSES, SupportCase


@dataclass(frozen=True)
class EventRates:
    """Events received per bucket of ``bucket_seconds`` since ``since``, by kind and outcome.

    ``counts[(bucket, kind, status)]`` is a number of events; ``bucket`` counts buckets from
    ``since`` (0 is the oldest). ``totals`` sums them by kind and status.
    """

    since: dt.datetime
    bucket_seconds: int
    buckets: int
    counts: dict[tuple[int, str, str], int] = field(default_factory=dict)

    @property
    def kinds(self) -> list[str]:
        return sorted({kind for _, kind, _ in self.counts})

    @property
    def statuses(self) -> list[str]:
        order = [s.value for s in EventStatus]
        present = {status for _, _, status in self.counts}
        return [s for s in order if s in present] + sorted(present - set(order))

    def totals(self) -> dict[tuple[str, str], int]:
        summed: dict[tuple[str, str], int] = defaultdict(int)
        for (_, kind, status), count in self.counts.items():
            summed[kind, status] += count
        return dict(summed)

    def series(self, *, kind: str | None = None) -> dict[str, list[int]]:
        """Per status, the count in each bucket (of one kind, or of all)."""
        out = {status: [0] * self.buckets for status in self.statuses}
        for (bucket, row_kind, status), count in self.counts.items():
            if kind is None or row_kind == kind:
                out[status][bucket] += count
        return out


def event_rates(
    session: Session, *, now: dt.datetime, hours: int = 24, bucket_seconds: int = 900
) -> EventRates:
    """Events received in the last ``hours`` (from the start of the bucket that was current
    then), counted per bucket, kind and status.

    With the rollup's bucket size, the buckets the rollup has counted are read from
    ``event_rate_buckets`` and only the rest (the current bucket, and any beat has not
    reached yet) from the inbox; otherwise every bucket is counted from the inbox.
    """
    # Buckets on the clock (quarter hours at :00, :15…), the last one the current, partial one.
    since = rollup.bucket_floor(now - dt.timedelta(hours=hours), bucket_seconds)
    buckets = hours * 3600 // bucket_seconds + 1
    live_from = since
    counts: rollup.Counts = {}
    if bucket_seconds == rollup.BUCKET_SECONDS:
        # Rows only below the watermark read here: a run committing in between replaces
        # counts of the same buckets, and every later bucket is counted live below.
        counted = rollup.counted_until(session)
        if counted is not None:
            live_from = min(max(counted, since), rollup.bucket_floor(now, bucket_seconds))
            counts = rollup.rolled_up(session, since=since, until=live_from)
    live = rollup.count_events(session, since=live_from, until=None, seconds=bucket_seconds)
    rates = EventRates(since=since, bucket_seconds=bucket_seconds, buckets=buckets)
    for source in (counts, live):
        for (began, kind, status), count in source.items():
            index = int((began - since).total_seconds()) // bucket_seconds
            key = (min(max(index, 0), buckets - 1), kind, status)
            rates.counts[key] = rates.counts.get(key, 0) + count
    return rates


@dataclass(frozen=True)
class EventLine:
    id: int
    source: str
    kind: str
    status: str
    received_at: dt.datetime
    error: str | None


def latest_events(session: Session, *, limit: int = 10) -> list[EventLine]:
    """The most recent events, newest first, with their source's name."""
    query = (
        select(InboxEvent, Source.name)
        .join(Source, Source.id == InboxEvent.source_id)
        .order_by(InboxEvent.id.desc())
        .limit(limit)
    )
    return [
        EventLine(e.id, name, e.kind, e.status, e.received_at, e.error)
        for e, name in session.execute(query)
    ]


Due = InstrumentedAttribute[dt.datetime | None]


def _overdue(due: Due, met: Due, now: dt.datetime) -> ColumnElement[bool]:
    """Open cases owing an answer (``met`` unset) due before ``now``: the predicate of a
    partial index on ``due``. The statuses are inlined so that PostgreSQL can match it to
    the index's predicate whatever plan a prepared statement gets."""
    statuses: BindParameter[list[str]] = bindparam(
        "open_statuses", list(OPEN_CASE_STATUSES), expanding=True, unique=True, literal_execute=True
    )
    return and_(SupportCase.status.in_(statuses), met.is_(None), due < now)


def breaching_sla(now: dt.datetime) -> ColumnElement[bool]:
    """Open cases past a due time they have not met yet."""
    return or_(
        _overdue(SupportCase.first_response_due_at, SupportCase.first_responded_at, now),
        _overdue(SupportCase.resolution_due_at, SupportCase.resolved_at, now),
    )


def breach_count(now: dt.datetime) -> Select[Any]:
    """How many open cases are past due: two counts that each read one partial index alone
    (index-only on PostgreSQL), the second leaving out the cases the first counted."""
    answer_late = _overdue(SupportCase.first_response_due_at, SupportCase.first_responded_at, now)
    resolution_late = _overdue(SupportCase.resolution_due_at, SupportCase.resolved_at, now)
    counted = and_(
        SupportCase.first_responded_at.is_(None), SupportCase.first_response_due_at < now
    )
    first = select(func.count()).select_from(SupportCase).where(answer_late)
    second = select(func.count()).select_from(SupportCase).where(resolution_late, ~counted)
    return select(first.scalar_subquery() + second.scalar_subquery())


def cases_breaching_sla(
    session: Session, *, now: dt.datetime, limit: int = 10
) -> tuple[int, list[SupportCase]]:
    """How many open cases are past due, and the ``limit`` longest overdue (by the earliest
    due time they missed).

    The count walks the two partial indexes; the longest overdue are the first ``limit`` of
    each index, merged.
    """
    count: int | None = session.scalar(breach_count(now))
    missed: dict[int, tuple[dt.datetime, SupportCase]] = {}
    for due, met in (
        (SupportCase.first_response_due_at, SupportCase.first_responded_at),
        (SupportCase.resolution_due_at, SupportCase.resolved_at),
    ):
        query = (
            select(SupportCase, due).where(_overdue(due, met, now)).order_by(due, SupportCase.id)
        )
        for case, at in session.execute(query.limit(limit)):
            if at is not None and (case.id not in missed or at < missed[case.id][0]):
                missed[case.id] = (at, case)
    ordered = sorted(missed.values(), key=lambda pair: (pair[0], pair[1].id))
    return int(count or 0), [case for _, case in ordered[:limit]]


@dataclass(frozen=True)
class SendingCampaign:
    id: int
    name: str
    sends: dict[str, int]


def campaigns_sending(session: Session, *, limit: int = 20) -> list[SendingCampaign]:
    """Campaigns sending now, with their sends counted by status (one grouped query)."""
    campaigns = list(
        session.execute(
            select(MarketingCampaign.id, MarketingCampaign.name)
            .where(MarketingCampaign.status == CampaignStatus.SENDING)
            .order_by(MarketingCampaign.id)
            .limit(limit)
        )
    )
    ids = [cid for cid, _ in campaigns]
    sends: dict[int, dict[str, int]] = defaultdict(dict)
    if ids:
        rows = session.execute(
            select(CampaignSend.campaign_id, CampaignSend.status, func.count())
            .where(CampaignSend.campaign_id.in_(ids))
            .group_by(CampaignSend.campaign_id, CampaignSend.status)
        )
        for cid, status, count in rows:
            sends[cid][str(status)] = int(count)
    return [SendingCampaign(cid, name, sends[cid]) for cid, name in campaigns]
