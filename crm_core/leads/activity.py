"""The ``lead_captured`` Activity: what arrived, whom it matched, and what it changed."""

from __future__ import annotations

from typing import Any

from crm_core.activities.models import Activity, ActivityType, Direction
from crm_core.campaigns.models import MarketingCampaign
from crm_core.db import utcnow
from crm_core.leads.matching import ContactMatch
from crm_core.leads.normalize import NormalizedLead
from crm_core.sales.models import Opportunity


def _summary(lead: NormalizedLead, match: ContactMatch) -> str:
    who = lead.full_name or lead.email or (lead.phone.raw if lead.phone else None) or "someone"
    if lead.email and lead.full_name:
        who = f"{lead.full_name} <{lead.email}>"
    if match.created_contact:
        outcome = "new contact"
    elif match.changes:
        outcome = f"updated {', '.join(match.changes)}"
    else:
        outcome = "known contact, nothing new"
    return f"Lead captured: {who} ({outcome})"


def _deal_details(lead: NormalizedLead) -> dict[str, Any] | None:
    if lead.deal is None:
        return None
    return lead.deal.details()


def lead_details(lead: NormalizedLead, match: ContactMatch) -> dict[str, Any]:
    """The Activity's details: the match, every change, the UTM fields and the message."""
    utm = {
        "source": lead.utm_source,
        "medium": lead.utm_medium,
        "campaign": lead.utm_campaign,
    }
    details: dict[str, Any] = {
        "matched_by": match.matched_by,
        "created": {"contact": match.created_contact, "customer": match.created_customer},
        "changes": match.changes,
        "customer_changes": match.customer_changes,
        "utm": {key: value for key, value in utm.items() if value is not None},
        "message": lead.message,
        "company": lead.company,
        "external_id": lead.external_id,
        "deal": _deal_details(lead),
    }
    if lead.consent is not None:
        details["consent"] = lead.consent.as_dict()
    if lead.extra_fields:
        details["extra_fields"] = dict(lead.extra_fields)
    if lead.phone is not None and not lead.phone.valid:
        details["phone_flagged"] = lead.phone.raw
    if lead.country_raw and lead.country is None:
        details["country_unrecognized"] = lead.country_raw
    return details


def lead_activity(
    *,
    lead: NormalizedLead,
    match: ContactMatch,
    opportunity: Opportunity | None,
    campaign: MarketingCampaign | None,
    event_id: int | None,
) -> Activity:
    """A new, unsaved ``lead_captured`` Activity linked to everything the lead touched."""
    return Activity(
        type=ActivityType.LEAD_CAPTURED,
        direction=Direction.INBOUND,
        occurred_at=utcnow(),
        summary=_summary(lead, match),
        details=lead_details(lead, match),
        customer_id=match.customer.id,
        contact_id=match.contact.id,
        opportunity_id=opportunity.id if opportunity else None,
        campaign_id=campaign.id if campaign else None,
        event_id=event_id,
    )
