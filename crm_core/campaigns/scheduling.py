"""Dispatch: claim due campaigns, materialize their recipients, claim and settle send rows.

At most once, per recipient: a send row is ``pending`` until a batch claims it
(``sending``, committed before any SMTP or HTTP call), then ``sent``,
``failed`` or back to ``pending`` (only when the failure proves nothing went
out). A row still ``sending`` after a crash may or may not have gone out: it
becomes ``unknown`` and is never sent again automatically.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, exists, func, literal, select, update
from sqlalchemy.orm import Session

from crm_core.bounces.models import Suppression
from crm_core.bounces.suppression import erased_among
from crm_core.campaigns.models import CampaignSend, CampaignStatus, MarketingCampaign, SendStatus
from crm_core.campaigns.recurrence import next_run
from crm_core.campaigns.segments import parse_segment, segment_query
from crm_core.customers.models import ConsentStatus, Contact
from crm_core.db import UTCDateTime, dialect_insert
from crm_core.notifications.events import CampaignFinished, CampaignSummary
from crm_core.notifications.services import notify_all

SUPPRESSED_ERROR = "suppressed before sending"
ERASED_ERROR = "recipient's address was erased"


@dataclass(frozen=True)
class ClaimedSend:
    """A send row this batch owns: it is ``sending`` in the database."""

    id: int
    contact_id: int
    email: str
    # Attempts before this one (a transient failure may have released it before).
    attempts: int = 0


def due_campaigns(session: Session, *, now: dt.datetime) -> list[int]:
    """The ids of the scheduled campaigns that are due, oldest id first (nothing is claimed)."""
    query = select(MarketingCampaign.id).where(
        MarketingCampaign.status == CampaignStatus.SCHEDULED, MarketingCampaign.send_at <= now
    )
    return list(session.scalars(query.order_by(MarketingCampaign.id)))


def claim_campaign(session: Session, *, campaign_id: int, now: dt.datetime) -> bool:
    """Move one due scheduled campaign to ``sending``; True if this caller won it.

    One conditional UPDATE: two dispatchers racing on PostgreSQL both try the
    row, the second waits for the first's commit, re-checks ``status`` and
    skips it; on SQLite the write lock serializes them. Either way exactly
    one dispatcher gets each campaign.
    """
    claimed = session.execute(
        update(MarketingCampaign)
        .where(
            MarketingCampaign.id == campaign_id,
            MarketingCampaign.status == CampaignStatus.SCHEDULED,
            MarketingCampaign.send_at <= now,
        )
        .values(
            status=CampaignStatus.SENDING,
            started_at=func.coalesce(MarketingCampaign.started_at, literal(now, UTCDateTime())),
            version=MarketingCampaign.version + 1,
        )
        .returning(MarketingCampaign.id)
        .execution_options(synchronize_session=False)
    )
    return claimed.scalar() is not None


def claim_due_campaigns(session: Session, *, now: dt.datetime) -> list[int]:
    """``claim_campaign`` for every due campaign; the ids this caller won."""
    return [
        campaign_id
        for campaign_id in due_campaigns(session, now=now)
        if claim_campaign(session, campaign_id=campaign_id, now=now)
    ]


def start_campaign(
    session: Session, *, campaign_id: int, now: dt.datetime, require_consent: bool = False
) -> bool:
    """Claim one due campaign and add its recipients' send rows; True if this caller started it.

    The caller commits both together, in a transaction of this campaign's own:
    a campaign is never ``sending`` without its rows, and one that cannot be
    started (see ``fail_campaign``) holds up no other.
    """
    if not claim_campaign(session, campaign_id=campaign_id, now=now):
        return False
    campaign = session.get(MarketingCampaign, campaign_id)
    assert campaign is not None  # just claimed in this transaction
    materialize_recipients(session, campaign=campaign, now=now, require_consent=require_consent)
    return True


def fail_campaign(session: Session, *, campaign_id: int, reason: str, now: dt.datetime) -> bool:
    """A campaign the dispatcher cannot start or reschedule becomes ``failed``, with the reason.

    Only from ``scheduled`` or ``sending``: a campaign paused or cancelled in
    the meantime keeps the state a person gave it.
    """
    failed = session.execute(
        update(MarketingCampaign)
        .where(
            MarketingCampaign.id == campaign_id,
            MarketingCampaign.status.in_((CampaignStatus.SCHEDULED, CampaignStatus.SENDING)),
        )
        .values(
            status=CampaignStatus.FAILED,
            failure_reason=reason[:500],
            completed_at=now,
            version=MarketingCampaign.version + 1,
        )
        .execution_options(synchronize_session=False)
    )
    return bool(failed.rowcount)  # type: ignore[attr-defined]


def describe_failure(exc: BaseException) -> str:
    """One line saying why a campaign failed, for people (no traceback)."""
    first_line = (str(exc).strip().splitlines() or [""])[0]
    return f"{type(exc).__name__}: {first_line}"[:500] if first_line else type(exc).__name__


def materialize_recipients(
    session: Session,
    *,
    campaign: MarketingCampaign,
    now: dt.datetime,
    require_consent: bool = False,
) -> int:
    """Add one ``pending`` send row per recipient of the segment; how many were new.

    One ``INSERT … SELECT … ON CONFLICT DO NOTHING``: contacts with an address
    and not on the suppression list (and, with ``require_consent``, whose marketing
    consent is granted), for the campaign's current run. Running it again adds
    nobody twice.
    """
    recipients = segment_query(
        parse_segment(campaign.segment),
        exclude_suppressed=True,
        require_consent=require_consent,
        now=now,
    )
    rows = select(
        literal(campaign.id),
        literal(campaign.current_run),
        Contact.id,
        func.coalesce(Contact.email, Contact.email_normalized),
        literal(SendStatus.PENDING.value),
        literal(0),
        literal(now, UTCDateTime()),
    ).where(Contact.id.in_(recipients.order_by(None)))
    columns = ["campaign_id", "run", "contact_id", "email", "status", "attempts", "created_at"]
    statement = (
        dialect_insert(session, CampaignSend)
        .from_select(columns, rows)
        .on_conflict_do_nothing(index_elements=["campaign_id", "run", "contact_id"])
        # SQLAlchemy only keeps an INSERT's rowcount when asked.
        .execution_options(preserve_rowcount=True)
    )
    return max(session.execute(statement).rowcount, 0)  # type: ignore[attr-defined]


def claim_batch(
    session: Session,
    *,
    campaign_id: int,
    size: int,
    now: dt.datetime,
    secret_key: str | None = None,
) -> list[ClaimedSend]:
    """Up to ``size`` pending rows of a sending campaign, now ``sending`` and owned by the caller.

    Commit before sending anything. On PostgreSQL ``SKIP LOCKED`` lets batches
    of the same campaign claim side by side without waiting or overlapping.
    Picked rows whose address was suppressed since materialization fail instead, and so
    do, given the ``secret_key`` erased addresses are hashed with, rows to the address of
    an erased person who has not opted in again since (``_erased_among``).
    """
    if not _is_sending(session, campaign_id=campaign_id):
        return []
    picked = session.execute(
        select(CampaignSend.id, CampaignSend.contact_id, CampaignSend.email, CampaignSend.attempts)
        .where(CampaignSend.campaign_id == campaign_id, CampaignSend.status == SendStatus.PENDING)
        .order_by(CampaignSend.id)
        .limit(size)
        .with_for_update(skip_locked=True)
    ).all()
    suppressed = _suppressed_among(session, [row.id for row in picked])
    _set_status(session, suppressed, status=SendStatus.FAILED, error=SUPPRESSED_ERROR)
    if secret_key is not None:
        erased = _erased_among(session, picked, secret_key=secret_key)
        _set_status(session, erased, status=SendStatus.FAILED, error=ERASED_ERROR)
        suppressed |= erased
    claimed = [
        ClaimedSend(id=row.id, contact_id=row.contact_id, email=row.email, attempts=row.attempts)
        for row in picked
        if row.id not in suppressed
    ]
    _set_status(session, {row.id for row in claimed}, status=SendStatus.SENDING, sending_at=now)
    return claimed


def _is_sending(session: Session, *, campaign_id: int) -> bool:
    status = session.scalar(
        select(MarketingCampaign.status).where(MarketingCampaign.id == campaign_id)
    )
    return status == CampaignStatus.SENDING


def _erased_among(session: Session, picked: Sequence[Any], *, secret_key: str) -> set[int]:
    """The picked rows to the address of an erased person, unless that contact granted
    marketing consent after the erasure (a new person, who opted in again)."""
    erased = erased_among(
        session, secret_key=secret_key, addresses={row.email.strip().lower() for row in picked}
    )
    if not erased:
        return set()
    contacts = {
        contact.id: contact
        for contact in session.scalars(
            select(Contact).where(Contact.id.in_([row.contact_id for row in picked]))
        )
    }
    refused = set()
    for row in picked:
        when = erased.get(row.email.strip().lower())
        if when is not None and not _opted_in_since(contacts.get(row.contact_id), when):
            refused.add(row.id)
    return refused


def _opted_in_since(contact: Contact | None, moment: dt.datetime) -> bool:
    if contact is None or contact.marketing_consent != ConsentStatus.GRANTED:
        return False
    stated = contact.marketing_consent_at
    return stated is not None and _aware(stated) > _aware(moment)


def _aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)


def _suppressed_among(session: Session, send_ids: list[int]) -> set[int]:
    if not send_ids:
        return set()
    query = (
        select(CampaignSend.id)
        .join(Contact, Contact.id == CampaignSend.contact_id)
        .join(Suppression, Suppression.email_normalized == Contact.email_normalized)
        .where(CampaignSend.id.in_(send_ids))
    )
    return set(session.scalars(query))


def _set_status(session: Session, send_ids: set[int], **values: object) -> None:
    if send_ids:
        session.execute(
            update(CampaignSend)
            .where(CampaignSend.id.in_(sorted(send_ids)))
            .values(**values)
            .execution_options(synchronize_session=False)
        )


def recover_stale_sending(session: Session, *, older_than: dt.timedelta, now: dt.datetime) -> int:
    """Rows ``sending`` for longer than any batch can run become ``unknown``; how many.

    Their batch died between the claim and recording the outcome: the message
    may have gone out, so it is counted, never re-sent.
    """
    result = session.execute(
        update(CampaignSend)
        .where(
            CampaignSend.status == SendStatus.SENDING,
            CampaignSend.sending_at < now - older_than,
        )
        .values(status=SendStatus.UNKNOWN, error="found sending after a crash; not re-sent")
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def has_pending(session: Session, *, campaign_id: int) -> bool:
    """Whether the campaign still has rows waiting for a batch."""
    pending = select(CampaignSend.id).where(
        CampaignSend.campaign_id == campaign_id, CampaignSend.status == SendStatus.PENDING
    )
    return session.scalar(pending.limit(1)) is not None


def complete_if_done(session: Session, *, campaign_id: int, now: dt.datetime) -> bool:
    """``sending → sent`` when no row is pending or sending any more; True if it moved."""
    return campaign_id in _complete(session, now=now, campaign_id=campaign_id)


def complete_finished_campaigns(session: Session, *, now: dt.datetime) -> list[int]:
    """Every sending campaign with no row pending or sending becomes ``sent``; their ids.

    A recurring one is scheduled again instead, for its next run. Catches
    campaigns whose last batch died (its rows turned ``unknown``) or whose
    segment was empty. Materialization commits with the claim, so a campaign is
    never seen ``sending`` before its rows exist.
    """
    return _complete(session, now=now, campaign_id=None)


def _complete(session: Session, *, now: dt.datetime, campaign_id: int | None) -> list[int]:
    open_rows = exists().where(
        CampaignSend.campaign_id == MarketingCampaign.id,
        CampaignSend.status.in_((SendStatus.PENDING, SendStatus.SENDING)),
    )
    statement = update(MarketingCampaign).where(
        MarketingCampaign.status == CampaignStatus.SENDING, ~open_rows
    )
    if campaign_id is not None:
        statement = statement.where(MarketingCampaign.id == campaign_id)
    completed = session.execute(
        statement.values(
            status=CampaignStatus.SENT, completed_at=now, version=MarketingCampaign.version + 1
        )
        .returning(
            MarketingCampaign.id,
            MarketingCampaign.schedule_cron,
            MarketingCampaign.code,
            MarketingCampaign.name,
            MarketingCampaign.current_run,
        )
        .execution_options(synchronize_session=False)
    ).all()
    _announce_finished(
        session,
        [(r.id, r.schedule_cron, r.code, r.name, r.current_run) for r in completed],
        now=now,
    )
    for campaign_id_, cron, *_ in completed:
        if cron:
            _schedule_next_run(session, campaign_id=campaign_id_, cron=cron, now=now)
    return sorted(row[0] for row in completed)


def _announce_finished(
    session: Session,
    completed: Sequence[tuple[int, str | None, str, str, int]],
    *,
    now: dt.datetime,
) -> None:
    """One ``campaign.finished`` per finished run, with its send rows counted by status."""
    if not completed:
        return
    runs = {row[0]: row[4] for row in completed}
    counts: dict[int, dict[str, int]] = {campaign_id: {} for campaign_id in runs}
    for campaign_id, run, status, count in session.execute(
        select(CampaignSend.campaign_id, CampaignSend.run, CampaignSend.status, func.count())
        .where(CampaignSend.campaign_id.in_(runs))
        .group_by(CampaignSend.campaign_id, CampaignSend.run, CampaignSend.status)
    ):
        if runs[campaign_id] == run:
            counts[campaign_id][status] = count
    notify_all(
        session,
        [
            CampaignFinished(
                campaign=CampaignSummary(
                    id=campaign_id, code=code, name=name, run=run, completed_at=now
                ),
                sends=counts[campaign_id],
            )
            for campaign_id, _cron, code, name, run in sorted(completed)
        ],
        now=now,
    )


def _schedule_next_run(session: Session, *, campaign_id: int, cron: str, now: dt.datetime) -> None:
    """A recurring campaign's run is over: the next one, in the same transaction.

    A cron with no next run (stored before runs were checked) fails the
    campaign with the reason instead of failing the whole dispatch.
    """
    try:
        following = next_run(cron, after=now)
    except ValueError as exc:  # croniter's errors are ValueErrors
        session.execute(
            update(MarketingCampaign)
            .where(MarketingCampaign.id == campaign_id)
            .values(
                status=CampaignStatus.FAILED,
                failure_reason=f"cron {cron!r} has no next run: {describe_failure(exc)}"[:500],
                # This run is over: scheduled again (with a cron that matches), the next one starts.
                current_run=MarketingCampaign.current_run + 1,
                version=MarketingCampaign.version + 1,
            )
            .execution_options(synchronize_session=False)
        )
        return
    session.execute(
        update(MarketingCampaign)
        .where(MarketingCampaign.id == campaign_id)
        .values(
            status=CampaignStatus.SCHEDULED,
            send_at=following,
            current_run=MarketingCampaign.current_run + 1,
            version=MarketingCampaign.version + 1,
        )
        .execution_options(synchronize_session=False)
    )


def stalled_campaigns(session: Session, *, idle_for: dt.timedelta, now: dt.datetime) -> list[int]:
    """Sending campaigns with pending rows and no claim for ``idle_for``: their chain was lost."""
    last_claim = (
        select(func.max(CampaignSend.sending_at))
        .where(CampaignSend.campaign_id == MarketingCampaign.id)
        .scalar_subquery()
    )
    pending = exists().where(
        CampaignSend.campaign_id == MarketingCampaign.id,
        CampaignSend.status == SendStatus.PENDING,
    )
    idle_since = func.coalesce(last_claim, MarketingCampaign.started_at)
    query = select(MarketingCampaign.id).where(
        and_(MarketingCampaign.status == CampaignStatus.SENDING, pending),
        idle_since < now - idle_for,
    )
    return list(session.scalars(query.order_by(MarketingCampaign.id)))
