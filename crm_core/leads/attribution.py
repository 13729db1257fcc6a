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

# Stages after which a deal of the same name is a new opportunity.
CLOSED_STAGES = (OpportunityStage.WON, OpportunityStage.LOST)


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
    if lead.deal is None:
        return None
    name, currency = deal_terms(lead)
    lock_identities(session, [deal_lock(contact.customer_id, name)])
    existing = session.scalars(
        select(Opportunity)
        .where(
            Opportunity.customer_id == contact.customer_id,
            func.lower(Opportunity.name) == name.lower(),
            Opportunity.stage.not_in(CLOSED_STAGES),
        )
        .order_by(Opportunity.id)
        .limit(1)
    ).first()
    if existing is not None:
        fill_opportunity(existing, lead=lead, contact_id=contact.id, currency=currency)
        session.flush()
        return existing
    opportunity = new_opportunity(
        lead=lead,
        customer_id=contact.customer_id,
        contact_id=contact.id,
        source_id=source_id,
        name=name,
        currency=currency,
    )
    session.add(opportunity)
    session.flush()
    return opportunity
