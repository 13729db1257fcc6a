"""What a lead brings besides the person: a campaign it answered and a deal it asked about."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sqlalchemy import select, tuple_, update
from sqlalchemy.orm import Session

from crm_core.campaigns.models import (
    CampaignMember,
    CampaignStatus,
    MarketingCampaign,
    MemberStatus,
)
from crm_core.db import dialect_insert, utcnow
from crm_core.leads.normalize import NormalizedLead
from crm_core.sales.models import Opportunity, OpportunityStage

# Stages after which a deal of the same name is a new opportunity.
CLOSED_STAGES = (OpportunityStage.WON, OpportunityStage.LOST)


def campaigns_for_codes(session: Session, *, codes: Sequence[str]) -> dict[str, MarketingCampaign]:
    """The campaign of each UTM code, created as a draft when there is none (race-safe)."""
    if not codes:
        return {}
    now = utcnow()
    session.execute(
        dialect_insert(session, MarketingCampaign)
        .values(
            [
                {
                    "code": code,
                    "name": code,
                    "status": CampaignStatus.DRAFT,
                    "segment": {},
                    "created_at": now,
                    "updated_at": now,
                }
                for code in sorted(set(codes))
            ]
        )
        .on_conflict_do_nothing(index_elements=["code"])
    )
    return {
        campaign.code: campaign
        for campaign in session.scalars(
            select(MarketingCampaign).where(MarketingCampaign.code.in_(set(codes)))
        )
    }


def record_responses(session: Session, *, pairs: Iterable[tuple[int, int]]) -> None:
    """Mark each ``(campaign_id, customer_id)`` customer as having responded to the campaign.

    A customer who was not a member becomes one, ``responded``; a member who
    was only targeted becomes ``responded``; one who already converted stays
    converted.
    """
    ordered = sorted(set(pairs))
    if not ordered:
        return
    now = utcnow()
    session.execute(
        dialect_insert(session, CampaignMember)
        .values(
            [
                {
                    "campaign_id": campaign_id,
                    "customer_id": customer_id,
                    "status": MemberStatus.RESPONDED,
                    "added_at": now,
                    "responded_at": now,
                }
                for campaign_id, customer_id in ordered
            ]
        )
        .on_conflict_do_nothing(index_elements=["campaign_id", "customer_id"])
    )
    session.execute(
        update(CampaignMember)
        .where(
            tuple_(CampaignMember.campaign_id, CampaignMember.customer_id).in_(ordered),
            CampaignMember.status == MemberStatus.TARGETED,
        )
        .values(status=MemberStatus.RESPONDED, responded_at=now)
        .execution_options(synchronize_session=False)
    )


def deal_terms(lead: NormalizedLead) -> tuple[str, str | None]:
    """The name (spaces collapsed) and upper-case currency of the lead's deal."""
    assert lead.deal is not None
    who = lead.company or lead.full_name or lead.email or "lead"
    name = " ".join((lead.deal.name or f"{who} (from lead)").split())[:255]
    currency = lead.deal.currency.upper() if lead.deal.currency else None
    return name, currency


def deal_lock(customer_id: int, name: str) -> str:
    """The identity locked while looking for (or creating) a customer's deal of this name."""
    return f"deal:{customer_id}:{name.casefold()}"


def fill_opportunity(
    opportunity: Opportunity, *, lead: NormalizedLead, contact_id: int, currency: str | None
) -> None:
    """Fill the opportunity's empty fields from the lead's deal; never overwrite a value."""
    assert lead.deal is not None
    for field, value in (
        ("contact_id", contact_id),
        ("amount", lead.deal.amount),
        ("currency", currency),
        ("expected_close_date", lead.deal.close_date),
        ("description", lead.message),
    ):
        if getattr(opportunity, field) is None and value is not None:
            setattr(opportunity, field, value)


def new_opportunity(
    *,
    lead: NormalizedLead,
    customer_id: int,
    contact_id: int,
    source_id: int | None,
    name: str,
    currency: str | None,
) -> Opportunity:
    """A new ``new``-stage opportunity for the lead's deal, not yet added to a session."""
    assert lead.deal is not None
    return Opportunity(
        customer_id=customer_id,
        contact_id=contact_id,
        source_id=source_id,
        name=name,
        description=lead.message,
        stage=OpportunityStage.NEW,
        amount=lead.deal.amount,
        currency=currency,
        expected_close_date=lead.deal.close_date,
    )
