"""Capturing leads, one or many, as the same decisions in the same order.

``services.capture_lead`` is a batch of one, so a lead captured in a batch ends exactly as it
would alone; a batch that loses a race raises ``BatchConflict`` and its caller captures the leads
one by one. Why it writes by kind of row, and how it locks: ``docs/performance.md`` (Lead
processing).
"""

from __future__ import annotations

from collections.abc import Container, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from crm_core.activities.models import Activity, ActivityType
from crm_core.base.entities import EntityType, ExternalRef
from crm_core.base.locks import lock_identities
from crm_core.campaigns.models import MarketingCampaign
from crm_core.customers.consent import apply_consent
from crm_core.db import dialect_insert, utcnow
from crm_core.leads.activity import lead_activity
from crm_core.leads.attribution import (
    CLOSED_STAGES,
    campaigns_for_codes,
    deal_lock,
    deal_terms,
    fill_opportunity,
    new_opportunity,
    record_responses,
)
from crm_core.leads.matching import ContactMatch, resolve_contacts
from crm_core.leads.normalize import NormalizedLead
from crm_core.notifications.events import ContactSummary, LeadCreated
from crm_core.notifications.services import notify_all
from crm_core.sales.models import Opportunity


class BatchConflict(RuntimeError):
    """A concurrent transaction created a row this batch meant to create."""


@dataclass(frozen=True)
class LeadItem:
    """One lead of a batch: the event it came in (if any) and its sender."""

    event_id: int | None
    source_id: int | None
    lead: NormalizedLead


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


def capture_leads(
    session: Session, items: Sequence[LeadItem], *, free_domains: Container[str]
) -> list[LeadResult]:
    """Capture every lead of ``items`` in order; one result per item.

    An item whose event was captured before gets the earlier result and writes
    nothing. Raises ``BatchConflict`` when a concurrent writer got in the way;
    the caller rolls back and captures the items one by one.
    """
    try:
        return capture_or_conflict(session, items, free_domains=free_domains)
    except IntegrityError as exc:
        raise BatchConflict(f"a concurrent writer took a row of this batch: {exc.orig}") from exc


def capture_or_conflict(
    session: Session, items: Sequence[LeadItem], *, free_domains: Container[str]
) -> list[LeadResult]:
    """``capture_leads``, letting a concurrent writer's conflict out as ``IntegrityError``."""
    earlier = _captured_before(session, [i.event_id for i in items if i.event_id is not None])
    fresh = [i for i in items if i.event_id is None or i.event_id not in earlier]
    captured = iter(_Batch(session, fresh, free_domains).run() if fresh else [])
    return [
        earlier[i.event_id] if i.event_id is not None and i.event_id in earlier else next(captured)
        for i in items
    ]


def _captured_before(session: Session, event_ids: list[int]) -> dict[int, LeadResult]:
    """The results of earlier captures of these events, read back from their Activities."""
    if not event_ids:
        return {}
    found: dict[int, LeadResult] = {}
    rows = session.execute(
        select(
            Activity.event_id,
            Activity.id,
            Activity.contact_id,
            Activity.customer_id,
            Activity.opportunity_id,
            Activity.campaign_id,
        )
        .where(Activity.event_id.in_(event_ids), Activity.type == ActivityType.LEAD_CAPTURED)
        .order_by(Activity.id)
    )
    for event_id, activity_id, contact_id, customer_id, opportunity_id, campaign_id in rows:
        if event_id is None or event_id in found or contact_id is None or customer_id is None:
            continue
        found[event_id] = LeadResult(
            contact_id=contact_id,
            customer_id=customer_id,
            activity_id=activity_id,
            opportunity_id=opportunity_id,
            campaign_id=campaign_id,
            replayed=True,
        )
    return found


class _Batch:
    """One batch's leads and what they bring besides the person."""

    def __init__(
        self, session: Session, items: Sequence[LeadItem], free_domains: Container[str]
    ) -> None:
        self.session = session
        self.items = items
        self.free_domains = free_domains

    def run(self) -> list[LeadResult]:
        """Capture the batch's leads, in order; one result each."""
        # Every lead of a batch is captured at one moment: the contacts' last activity
        # goes into their INSERT (or one UPDATE each for known contacts).
        now = utcnow()
        matches = resolve_contacts(
            self.session,
            [item.lead for item in self.items],
            free_domains=self.free_domains,
            last_activity_at=now,
        )
        for item, match in zip(self.items, matches, strict=True):
            if item.lead.consent is not None:
                statement = item.lead.consent.stamped(now)
                match.changes.update(
                    apply_consent(match.contact, statement, source_id=item.source_id)
                )
        self._remember_external_ids(matches)
        opportunities = self._opportunities(matches)
        campaigns = self._campaigns(matches)
        activities = []
        for item, match, opportunity in zip(self.items, matches, opportunities, strict=True):
            campaign = campaigns.get(item.lead.utm_campaign or "")
            activity = lead_activity(
                lead=item.lead,
                match=match,
                opportunity=opportunity,
                campaign=campaign,
                event_id=item.event_id,
            )
            activity.occurred_at = now
            activities.append(activity)
        self.session.add_all(activities)
        self.session.flush()
        results = [
            LeadResult(
                contact_id=match.contact.id,
                customer_id=match.customer.id,
                activity_id=activity.id,
                opportunity_id=opportunity.id if opportunity else None,
                campaign_id=activity.campaign_id,
                created_contact=match.created_contact,
                created_customer=match.created_customer,
            )
            for match, opportunity, activity in zip(matches, opportunities, activities, strict=True)
        ]
        self._announce(matches, results)
        return results

    def _announce(self, matches: list[ContactMatch], results: list[LeadResult]) -> None:
        """One ``lead.created`` notification per captured lead."""
        notify_all(
            self.session,
            [
                LeadCreated(
                    contact=ContactSummary.model_validate(match.contact),
                    created_contact=result.created_contact,
                    created_customer=result.created_customer,
                    opportunity_id=result.opportunity_id,
                    campaign_id=result.campaign_id,
                    source_id=item.source_id,
                    event_id=item.event_id,
                )
                for item, match, result in zip(self.items, matches, results, strict=True)
            ],
        )

    # --- what the lead brings besides the person -------------------------------------

    def _remember_external_ids(self, matches: list[ContactMatch]) -> None:
        rows: dict[tuple[int, str], dict[str, Any]] = {}
        now = utcnow()
        for item, match in zip(self.items, matches, strict=True):
            if item.source_id is None or not item.lead.external_id:
                continue
            rows.setdefault(
                (item.source_id, item.lead.external_id),
                {
                    "source_id": item.source_id,
                    "entity_type": EntityType.CONTACT,
                    "external_id": item.lead.external_id,
                    "entity_id": match.contact.id,
                    "created_at": now,
                },
            )
        if rows:
            self.session.execute(
                dialect_insert(self.session, ExternalRef)
                .values([rows[key] for key in sorted(rows)])
                .on_conflict_do_nothing(index_elements=["source_id", "entity_type", "external_id"])
            )

    def _opportunities(self, matches: list[ContactMatch]) -> list[Opportunity | None]:
        wanted: list[tuple[int, str, str | None] | None] = []
        for item, match in zip(self.items, matches, strict=True):
            if item.lead.deal is None:
                wanted.append(None)
                continue
            name, currency = deal_terms(item.lead)
            wanted.append((match.contact.customer_id, name, currency))
        asked = [w for w in wanted if w is not None]
        if not asked:
            return [None] * len(self.items)
        lock_identities(self.session, [deal_lock(customer, name) for customer, name, _ in asked])
        open_deals: dict[tuple[int, str], Opportunity] = {}
        for opportunity in self.session.scalars(
            select(Opportunity)
            .where(
                Opportunity.customer_id.in_({customer for customer, _, _ in asked}),
                Opportunity.stage.not_in(CLOSED_STAGES),
            )
            .order_by(Opportunity.id)
        ):
            open_deals.setdefault((opportunity.customer_id, opportunity.name.lower()), opportunity)
        result: list[Opportunity | None] = []
        created = []
        for item, match, want in zip(self.items, matches, wanted, strict=True):
            if want is None:
                result.append(None)
                continue
            customer_id, name, currency = want
            existing = open_deals.get((customer_id, name.lower()))
            if existing is not None:
                fill_opportunity(
                    existing, lead=item.lead, contact_id=match.contact.id, currency=currency
                )
                result.append(existing)
                continue
            opportunity = new_opportunity(
                lead=item.lead,
                customer_id=customer_id,
                contact_id=match.contact.id,
                source_id=item.source_id,
                name=name,
                currency=currency,
            )
            open_deals[(customer_id, name.lower())] = opportunity
            created.append(opportunity)
            result.append(opportunity)
        self.session.add_all(created)
        self.session.flush()
        return result

    def _campaigns(self, matches: list[ContactMatch]) -> dict[str, MarketingCampaign]:
        """The campaign of each UTM code (drafts created for new codes), and the responses."""
        codes = [item.lead.utm_campaign for item in self.items if item.lead.utm_campaign]
        campaigns = campaigns_for_codes(self.session, codes=codes)
        record_responses(
            self.session,
            pairs=[
                (campaigns[item.lead.utm_campaign].id, match.customer.id)
                for item, match in zip(self.items, matches, strict=True)
                if item.lead.utm_campaign
            ],
        )
        return campaigns
