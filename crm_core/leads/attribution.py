"""What a lead brings besides the person: a campaign it answered and a deal it asked about."""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from crm_core.campaigns.models import (
    CampaignMember,
    CampaignStatus,
    MarketingCampaign,
    MemberStatus,
)
from crm_core.customers.models import Contact
from crm_core.db import dialect_insert, utcnow
from crm_core.leads.normalize import NormalizedLead
from crm_core.sales.models import Opportunity, OpportunityStage


def campaign_for_code(session: Session, *, code: str) -> MarketingCampaign:
    """The campaign with UTM code ``code``, created as a draft when there is none (race-safe)."""
    now = utcnow()
    session.execute(
        dialect_insert(session, MarketingCampaign)
        .values(
            code=code,
            name=code,
            status=CampaignStatus.DRAFT,
            segment={},
            created_at=now,
            updated_at=now,
        )
        .on_conflict_do_nothing(index_elements=["code"])
    )
    return session.scalars(select(MarketingCampaign).where(MarketingCampaign.code == code)).one()


def record_response(session: Session, *, campaign_id: int, customer_id: int) -> None:
    """Mark the customer as having responded to the campaign (a member, ``responded``).

    A member who was only targeted becomes ``responded``; one who already
    converted stays converted.
    """
    now = utcnow()
    session.execute(
        dialect_insert(session, CampaignMember)
        .values(
            campaign_id=campaign_id,
            customer_id=customer_id,
            status=MemberStatus.RESPONDED,
            added_at=now,
            responded_at=now,
        )
        .on_conflict_do_nothing(index_elements=["campaign_id", "customer_id"])
    )
    session.execute(
        update(CampaignMember)
        .where(
            CampaignMember.campaign_id == campaign_id,
            CampaignMember.customer_id == customer_id,
            CampaignMember.status == MemberStatus.TARGETED,
        )
        .values(status=MemberStatus.RESPONDED, responded_at=now)
        .execution_options(synchronize_session=False)
    )


def opportunity_from_deal(
    session: Session, *, lead: NormalizedLead, contact: Contact, source_id: int | None
) -> Opportunity | None:
    """A new opportunity for the deal the lead asks about, if it asks about one."""
    deal = lead.deal
    if deal is None:
        return None
    who = lead.company or lead.full_name or lead.email or "lead"
    opportunity = Opportunity(
        customer_id=contact.customer_id,
        contact_id=contact.id,
        source_id=source_id,
        name=(deal.name or f"{who} (from lead)")[:255],
        description=lead.message,
        stage=OpportunityStage.NEW,
        amount=deal.amount,
        currency=deal.currency.upper() if deal.currency else None,
        expected_close_date=deal.close_date,
    )
    session.add(opportunity)
    session.flush()
    return opportunity
