"""Campaigns as people run them: create, schedule, send, pause, resume and cancel, each
checked against the ``campaigns`` permission and recorded in the audit log.

The rules of each step are ``crm_core.campaigns.services``'; this adds who did it. A step
that changes nothing (sending a campaign already sending, cancelling one twice) records
nothing.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session

from crm_core.campaigns import services
from crm_core.campaigns.models import MarketingCampaign
from crm_core.editing.records import snapshot
from crm_core.people import audit
from crm_core.people.permissions import Actor, Permission

ENTITY = "campaign"
AUDITED = (
    "name",
    "code",
    "status",
    "subject",
    "text_template",
    "html_template",
    "segment",
    "send_at",
    "schedule_cron",
)


def _record(
    session: Session, actor: Actor, campaign_id: int, action: str, before: dict[str, Any]
) -> None:
    campaign = session.get(MarketingCampaign, campaign_id)
    assert campaign is not None
    changes = audit.changes_between(before, snapshot(campaign, AUDITED))
    if changes:
        audit.record(
            session,
            actor=actor,
            entity=ENTITY,
            entity_id=campaign_id,
            action=action,
            changes=changes,
        )


def create_campaign(
    session: Session,
    *,
    actor: Actor,
    name: str,
    code: str,
    subject: str,
    text: str,
    html: str | None = None,
    segment: dict[str, Any] | None = None,
    send_at: dt.datetime | None = None,
) -> MarketingCampaign:
    """A new campaign (see ``services.create_campaign``); a lead's empty draft with the same
    code is filled in, and its entry shows what it held before."""
    actor.require(Permission.CAMPAIGNS)
    draft = session.scalar(select(MarketingCampaign).where(MarketingCampaign.code == code.strip()))
    before = snapshot(draft, AUDITED) if draft is not None else {}
    campaign = services.create_campaign(
        session,
        name=name,
        code=code,
        subject=subject,
        text=text,
        html=html,
        segment=segment,
        send_at=send_at,
    )
    _record(session, actor, campaign.id, "create", before)
    return campaign


T = TypeVar("T")


def _step(
    session: Session, actor: Actor, campaign_id: int, action: str, work: Callable[[], T]
) -> T:
    actor.require(Permission.CAMPAIGNS)
    # Locked and read afresh, as the step itself locks it, so the snapshot is what the step
    # starts from. A missing campaign is left to the step, which checks its input first.
    campaign = session.get(
        MarketingCampaign, campaign_id, with_for_update=True, populate_existing=True
    )
    before = snapshot(campaign, AUDITED) if campaign is not None else {}
    result = work()
    _record(session, actor, campaign_id, action, before)
    return result


def schedule(
    session: Session,
    *,
    actor: Actor,
    campaign_id: int,
    send_at: dt.datetime | None,
    cron: str | None = None,
) -> MarketingCampaign:
    """Send at ``send_at`` or on ``cron`` (``services.schedule``)."""
    return _step(
        session,
        actor,
        campaign_id,
        "schedule",
        lambda: services.schedule(session, campaign_id=campaign_id, send_at=send_at, cron=cron),
    )


def send_now(session: Session, *, actor: Actor, campaign_id: int) -> bool:
    """Make the campaign due now (``services.send_now``); False when it already is sending."""
    return _step(
        session,
        actor,
        campaign_id,
        "send",
        lambda: services.send_now(session, campaign_id=campaign_id),
    )


def pause(session: Session, *, actor: Actor, campaign_id: int) -> MarketingCampaign:
    """Stop claiming new batches (``services.pause``)."""
    return _step(
        session,
        actor,
        campaign_id,
        "pause",
        lambda: services.pause(session, campaign_id=campaign_id),
    )


def resume(session: Session, *, actor: Actor, campaign_id: int) -> MarketingCampaign:
    """Continue a paused campaign (``services.resume``)."""
    return _step(
        session,
        actor,
        campaign_id,
        "resume",
        lambda: services.resume(session, campaign_id=campaign_id),
    )


def cancel(session: Session, *, actor: Actor, campaign_id: int) -> MarketingCampaign:
    """Stop for good (``services.cancel``)."""
    return _step(
        session,
        actor,
        campaign_id,
        "cancel",
        lambda: services.cancel(session, campaign_id=campaign_id),
    )
