"""What an operator watches: events per minute by kind and outcome, the latest events, cases
past their SLA and campaigns sending now. Each is one grouped or limited query, whatever the
number of rows behind it."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, Integer, and_, cast, func, or_, select
from sqlalchemy.orm import Session

from crm_core.campaigns.models import CampaignSend, CampaignStatus, MarketingCampaign
from crm_core.ingestion.models import EventStatus, InboxEvent, Source
from crm_core.support.models import CaseStatus, SupportCase

OPEN_CASE_STATUSES = tuple(s.value for s in CaseStatus if s.value not in ("resolved", "closed"))


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


def _epoch_seconds(session: Session, column: Any) -> ColumnElement[int]:
    if session.get_bind().dialect.name == "postgresql":
        return cast(func.floor(func.extract("epoch", column)), Integer)
    return cast(func.strftime("%s", column), Integer)


def event_rates(
    session: Session, *, now: dt.datetime, hours: int = 24, bucket_seconds: int = 900
) -> EventRates:
    """Events received in the last ``hours`` (from the start of the bucket that was current
    then), counted per bucket, kind and status.

    The status filter lists every status so that PostgreSQL walks the
    ``(status, received_at)`` index instead of the whole inbox.
    """
    # Buckets on the clock (quarter hours at :00, :15…), the last one the current, partial one.
    start = (int((now - dt.timedelta(hours=hours)).timestamp()) // bucket_seconds) * bucket_seconds
    since = dt.datetime.fromtimestamp(start, dt.UTC)
    bucket = (_epoch_seconds(session, InboxEvent.received_at) - start) / bucket_seconds
    bucket = cast(func.floor(bucket), Integer)
    query = (
        select(bucket, InboxEvent.kind, InboxEvent.status, func.count())
        .where(
            InboxEvent.status.in_([s.value for s in EventStatus]),
            InboxEvent.received_at >= since,
        )
        .group_by(bucket, InboxEvent.kind, InboxEvent.status)
    )
    buckets = hours * 3600 // bucket_seconds + 1
    rates = EventRates(since=since, bucket_seconds=bucket_seconds, buckets=buckets)
    for index, kind, status, count in session.execute(query):
        position = min(max(int(index), 0), buckets - 1)
        key = (position, str(kind), str(status))
        rates.counts[key] = rates.counts.get(key, 0) + int(count)
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


def breaching_sla(now: dt.datetime) -> ColumnElement[bool]:
    """Open cases past a due time they have not met yet."""
    return and_(
        SupportCase.status.in_(OPEN_CASE_STATUSES),
        or_(
            and_(
                SupportCase.first_responded_at.is_(None),
                SupportCase.first_response_due_at < now,
            ),
            and_(SupportCase.resolved_at.is_(None), SupportCase.resolution_due_at < now),
        ),
    )


def cases_breaching_sla(
    session: Session, *, now: dt.datetime, limit: int = 10
) -> tuple[int, list[SupportCase]]:
    """How many open cases are past due, and the ``limit`` longest overdue."""
    where = breaching_sla(now)
    count = session.scalar(select(func.count()).select_from(SupportCase).where(where)) or 0
    due = func.coalesce(SupportCase.first_response_due_at, SupportCase.resolution_due_at)
    cases = session.scalars(
        select(SupportCase).where(where).order_by(due, SupportCase.id).limit(limit)
    )
    return int(count), list(cases)


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
