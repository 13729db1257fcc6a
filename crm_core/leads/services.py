"""Capturing a lead: one contact per person, one company per domain, a timeline entry.

Services take a ``Session`` and never commit; the task that calls them owns
the transaction. ``crm_core.leads.contacts`` makes concurrent captures of one
new person end in one contact.
"""

from __future__ import annotations

from collections.abc import Container
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from crm_core.activities.models import Activity, ActivityType
from crm_core.config import Settings, get_settings
from crm_core.db import dialect_insert, utcnow
from crm_core.errors import FieldError, InvalidInput
from crm_core.ingestion.models import EntityType, ExternalRef, InboxEvent
from crm_core.ingestion.schemas import LeadPayload
from crm_core.leads.activity import lead_activity
from crm_core.leads.attribution import campaign_for_code, opportunity_from_deal, record_response
from crm_core.leads.contacts import find_or_create_contact
from crm_core.leads.normalize import NormalizedLead, free_mail_domains, normalize_lead


@dataclass
class LeadResult:
    """Everything a captured lead touched; ``entities`` lists them as ``(type, id)``."""

    contact_id: int
    customer_id: int
    activity_id: int
    opportunity_id: int | None = None
    campaign_id: int | None = None
    created_contact: bool = False
    created_customer: bool = False
    # True when this event had been captured before and nothing was written.
    replayed: bool = False

    @property
    def entities(self) -> list[tuple[str, int]]:
        pairs = [
            (EntityType.CUSTOMER, self.customer_id),
            (EntityType.CONTACT, self.contact_id),
            (EntityType.OPPORTUNITY, self.opportunity_id),
            (EntityType.CAMPAIGN, self.campaign_id),
            (EntityType.ACTIVITY, self.activity_id),
        ]
        return [(str(kind), entity_id) for kind, entity_id in pairs if entity_id is not None]


def capture_lead(
    session: Session,
    *,
    source_id: int | None,
    event_id: int | None,
    lead: NormalizedLead,
    free_domains: Container[str] | None = None,
) -> LeadResult:
    """Turn a normalized lead into a contact, its customer, an opportunity for its
    deal, campaign attribution for its UTM code, and a ``lead_captured`` Activity.

    Capturing the same event twice writes nothing the second time.
    """
    if event_id is not None:
        earlier = _captured_before(session, event_id=event_id)
        if earlier is not None:
            return earlier
    match = find_or_create_contact(session, lead=lead, free_domains=free_domains)
    contact = match.contact
    if source_id is not None and lead.external_id:
        _remember_external_id(session, source_id=source_id, lead=lead, contact_id=contact.id)
    opportunity = opportunity_from_deal(session, lead=lead, contact=contact, source_id=source_id)
    campaign = campaign_for_code(session, code=lead.utm_campaign) if lead.utm_campaign else None
    if campaign is not None:
        record_response(session, campaign_id=campaign.id, customer_id=match.customer.id)
    activity = lead_activity(
        lead=lead, match=match, opportunity=opportunity, campaign=campaign, event_id=event_id
    )
    session.add(activity)
    contact.last_activity_at = activity.occurred_at
    session.flush()
    return LeadResult(
        contact_id=contact.id,
        customer_id=match.customer.id,
        activity_id=activity.id,
        opportunity_id=opportunity.id if opportunity else None,
        campaign_id=campaign.id if campaign else None,
        created_contact=match.created_contact,
        created_customer=match.created_customer,
    )


def _captured_before(session: Session, *, event_id: int) -> LeadResult | None:
    """The result of an earlier capture of this event, read back from its Activity."""
    activity = session.scalar(
        select(Activity)
        .where(Activity.event_id == event_id, Activity.type == ActivityType.LEAD_CAPTURED)
        .order_by(Activity.id)
        .limit(1)
    )
    if activity is None or activity.contact_id is None or activity.customer_id is None:
        return None
    return LeadResult(
        contact_id=activity.contact_id,
        customer_id=activity.customer_id,
        activity_id=activity.id,
        opportunity_id=activity.opportunity_id,
        campaign_id=activity.campaign_id,
        replayed=True,
    )


def _remember_external_id(
    session: Session, *, source_id: int, lead: NormalizedLead, contact_id: int
) -> None:
    """Map the sender's id of this person to the contact; the first mapping stands."""
    values: dict[str, Any] = {
        "source_id": source_id,
        "entity_type": EntityType.CONTACT,
        "external_id": lead.external_id,
        "entity_id": contact_id,
        "created_at": utcnow(),
    }
    session.execute(
        dialect_insert(session, ExternalRef)
        .values(**values)
        .on_conflict_do_nothing(index_elements=["source_id", "entity_type", "external_id"])
    )


def capture_lead_event(
    session: Session, *, event: InboxEvent, settings: Settings | None = None
) -> list[tuple[str, int]]:
    """Capture a stored ``leads`` event; the ``(entity_type, id)`` pairs it touched.

    A body that is not a lead, or a lead with bad fields, raises ``InvalidInput``
    listing each problem.
    """
    config = settings or get_settings()
    lead = lead_of_event(event, settings=config)
    free_domains = free_mail_domains(config.extra_freemail_domain_list())
    result = capture_lead(
        session, source_id=event.source_id, event_id=event.id, lead=lead, free_domains=free_domains
    )
    return result.entities


def lead_of_event(event: InboxEvent, *, settings: Settings) -> NormalizedLead:
    """The normalized lead of a stored ``leads`` event; ``InvalidInput`` listing each problem."""
    try:
        payload = LeadPayload.model_validate_json(event.body)
    except ValidationError as exc:
        raise InvalidInput(
            [FieldError(tuple(error["loc"]), error["msg"]) for error in exc.errors()]
        ) from None
    return normalize_lead(payload, default_region=settings.default_region)
