"""Everything about one customer that a person looks up before a call, in a fixed handful of
queries however much there is: the customer and its contacts (marketing consent included), a
page of its timeline, its newest deals, orders and cases, its campaigns, and which of its
addresses are suppressed."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from crm_core.base.pagination import Page
from crm_core.bounces.models import Suppression
from crm_core.campaigns.models import CampaignMember, MarketingCampaign
from crm_core.customers.models import Contact
from crm_core.readapi import queries
from crm_core.sales.models import Opportunity, Order
from crm_core.support.models import SupportCase

RELATED_LIMIT = 20


@dataclass(frozen=True)
class CustomerPage:
    customer: dict[str, Any]
    timeline: Page
    opportunities: list[Opportunity]
    orders: list[Order]
    cases: list[SupportCase]
    campaigns: list[tuple[MarketingCampaign, CampaignMember]]
    suppressed: dict[int, Suppression]  # by contact id


def _newest(session: Session, model: Any, customer_id: int) -> list[Any]:
    query = (
        select(model)
        .where(model.customer_id == customer_id)
        .order_by(model.updated_at.desc(), model.id.desc())
        .limit(RELATED_LIMIT)
    )
    return list(session.scalars(query))


def customer_page(
    session: Session,
    *,
    customer_id: int,
    activity_types: Sequence[str] = (),
    cursor: str | None = None,
    limit: int = 25,
) -> CustomerPage | None:
    """The customer's page, or None when there is no such customer."""
    customer = queries.get_customer(session, customer_id=customer_id)
    if customer is None:
        return None
    timeline = queries.timeline(
        session, of="customer", ident=customer_id, cursor=cursor, limit=limit, types=activity_types
    )
    assert timeline is not None  # the customer exists
    campaigns = session.execute(
        select(MarketingCampaign, CampaignMember)
        .join(CampaignMember, CampaignMember.campaign_id == MarketingCampaign.id)
        .where(CampaignMember.customer_id == customer_id)
        .order_by(CampaignMember.added_at.desc())
        .limit(RELATED_LIMIT)
    )
    address_rows = session.execute(
        select(Contact.id, Contact.email_normalized).where(
            Contact.customer_id == customer_id, Contact.email_normalized.is_not(None)
        )
    )
    addresses = {contact_id: address for contact_id, address in address_rows}
    suppressed: dict[int, Suppression] = {}
    if addresses:
        rows = session.scalars(
            select(Suppression).where(Suppression.email_normalized.in_(set(addresses.values())))
        )
        by_address = {row.email_normalized: row for row in rows}
        suppressed = {
            contact_id: by_address[address]
            for contact_id, address in addresses.items()
            if address in by_address
        }
    return CustomerPage(
        customer=customer,
        timeline=timeline,
        opportunities=_newest(session, Opportunity, customer_id),
        orders=_newest(session, Order, customer_id),
        cases=_newest(session, SupportCase, customer_id),
        campaigns=list(campaigns),
        suppressed=suppressed,
    )
