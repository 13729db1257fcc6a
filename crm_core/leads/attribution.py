"""What a lead brings besides the person: a campaign it answered and a deal it asked about."""

from __future__ import annotations

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from crm_core.campaigns.models import (
    CampaignMember,
    CampaignStatus,
    MarketingCampaign,
    MemberStatus,
)
from crm_core.customers.models import Contact
from crm_core.db import dialect_insert, utcnow
from crm_core.leads.locks import lock_identities
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
    """The opportunity for the deal the lead asks about, if it asks about one.

    A deal is the customer's open opportunity of the same name (compared
    without case or extra spaces) when there is one: the same form sent twice,
    or two people of one company asking about the same thing, make one
    opportunity, whose empty fields the later lead fills (never overwriting a
    value). Otherwise a new one, stage ``new``. The name is locked first, so
    two such leads processed at once meet in one opportunity.
    """
    deal = lead.deal
    if deal is None:
        return None
    who = lead.company or lead.full_name or lead.email or "lead"
    name = " ".join((deal.name or f"{who} (from lead)").split())[:255]
    currency = deal.currency.upper() if deal.currency else None
    lock_identities(session, [f"deal:{contact.customer_id}:{name.casefold()}"])
    existing = session.scalars(
        select(Opportunity)
        .where(
            Opportunity.customer_id == contact.customer_id,
            func.lower(Opportunity.name) == name.lower(),
            Opportunity.stage.not_in((OpportunityStage.WON, OpportunityStage.LOST)),
        )
        .order_by(Opportunity.id)
        .limit(1)
    ).first()
    if existing is not None:
        for field, value in (
            ("contact_id", contact.id),
            ("amount", deal.amount),
            ("currency", currency),
            ("expected_close_date", deal.close_date),
            ("description", lead.message),
        ):
            if getattr(existing, field) is None and value is not None:
                setattr(existing, field, value)
        session.flush()
        return existing
    opportunity = Opportunity(
        customer_id=contact.customer_id,
        contact_id=contact.id,
        source_id=source_id,
        name=name,
        description=lead.message,
        stage=OpportunityStage.NEW,
        amount=deal.amount,
        currency=currency,
        expected_close_date=deal.close_date,
    )
    session.add(opportunity)
    session.flush()
    return opportunity
