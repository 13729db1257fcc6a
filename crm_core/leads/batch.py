"""Capturing many leads in one transaction with a few statements per batch.

``capture_lead`` costs about twenty statements per lead. A batch does the same
work with a fixed number of statements, whatever its size: it locks every
identity its leads rely on (one statement), reads every contact, company and
campaign they could match (one query per kind), resolves each lead in memory,
in order, against what it read and what earlier leads of the batch created,
then writes with bulk statements: the new companies, contacts, opportunities
and Activities in one INSERT each.

The decisions are ``capture_lead``'s, made with the same functions (matching
order, merge rules, primary contact, deal reuse, the Activity), so a lead
captured in a batch ends exactly as it would alone. Concurrency is handled by
locks rather than retries: besides the identities ``capture_lead`` locks
(company names, phone-only contacts, deals), a batch locks each e-mail address
and company domain it may create, so two batches never insert the same row.
A writer that does not take those locks (``capture_lead`` itself, an order's
buyer) can still win a race for an address; the batch then raises
``BatchConflict`` and its caller captures the leads one by one.
"""

from __future__ import annotations

from collections.abc import Container, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, or_, select, tuple_, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from crm_core.activities.models import Activity, ActivityType
from crm_core.campaigns.models import (
    CampaignMember,
    CampaignStatus,
    MarketingCampaign,
    MemberStatus,
)
from crm_core.customers.models import Contact, Customer, CustomerKind
from crm_core.customers.services import name_key
from crm_core.db import dialect_insert, utcnow
from crm_core.ingestion.models import EntityType, ExternalRef
from crm_core.leads.activity import lead_activity
from crm_core.leads.attribution import (
    CLOSED_STAGES,
    deal_lock,
    deal_terms,
    fill_opportunity,
    new_opportunity,
)
from crm_core.leads.contacts import ContactMatch
from crm_core.leads.locks import lock_identities
from crm_core.leads.matching import (
    company_domain,
    company_values,
    identities_to_lock,
    unsaved_customer,
)
from crm_core.leads.merge import (
    Changes,
    lead_contact_values,
    merge_into_contact,
    merge_into_customer,
    new_contact_changes,
)
from crm_core.leads.normalize import NormalizedLead
from crm_core.leads.services import LeadResult
from crm_core.sales.models import Opportunity


class BatchConflict(RuntimeError):
    """A concurrent transaction created a row this batch meant to create."""


@dataclass(frozen=True)
class LeadItem:
    """One lead of a batch: the event it came in (if any) and its sender."""

    event_id: int | None
    source_id: int | None
    lead: NormalizedLead


def capture_leads(
    session: Session, items: Sequence[LeadItem], *, free_domains: Container[str]
) -> list[LeadResult]:
    """Capture every lead of ``items`` in order; one result per item.

    An item whose event was captured before gets the earlier result and writes
    nothing. Raises ``BatchConflict`` when a concurrent writer got in the way;
    the caller rolls back and captures the items one by one.
    """
    earlier = _captured_before(session, [i.event_id for i in items if i.event_id is not None])
    fresh = [i for i in items if i.event_id is None or i.event_id not in earlier]
    try:
        captured = iter(_Batch(session, fresh, free_domains).run() if fresh else [])
    except IntegrityError as exc:
        raise BatchConflict(f"a concurrent writer took a row of this batch: {exc.orig}") from exc
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
    """The in-memory state of one batch: what it read, and what its leads created."""

    def __init__(
        self, session: Session, items: Sequence[LeadItem], free_domains: Container[str]
    ) -> None:
        self.session = session
        self.items = items
        self.free_domains = free_domains
        self.by_email: dict[str, Contact] = {}
        # Contacts by E.164 phone, oldest first (new ones after every stored one).
        self.by_phone: dict[str, list[Contact]] = {}
        self.by_domain: dict[str, Customer] = {}
        # Companies by name key, oldest first.
        self.by_name: dict[str, list[Customer]] = {}
        self.with_primary: set[int] = set()
        self.new_customers: list[Customer] = []
        self.new_contacts: list[Contact] = []

    def run(self) -> list[LeadResult]:
        """Capture the batch's leads, in order; one result each."""
        leads = [item.lead for item in self.items]
        lock_identities(self.session, [key for lead in leads for key in self._identities(lead)])
        self._read(leads)
        # New contacts join stored customers' collections before they are added to the
        # session: nothing may flush until they are.
        with self.session.no_autoflush:
            matches = [self._match(lead) for lead in leads]
            self._assign_primaries()
        # Every lead of a batch is captured at one moment: the contacts' last activity
        # goes into their INSERT (or one UPDATE each for known contacts).
        now = utcnow()
        for match in matches:
            match.contact.last_activity_at = now
        # One INSERT for the new customers (each comes in with its first contact), one for
        # the new contacts; both in the order of the leads, as one by one.
        self.session.add_all(self.new_contacts)
        self.session.flush()
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
        return [
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

    # --- locking and reading ------------------------------------------------------

    def _identities(self, lead: NormalizedLead) -> list[str]:
        identities = identities_to_lock(lead)
        if lead.email:
            identities.append(f"contact-email:{lead.email}")
        domain = company_domain(lead, self.free_domains)
        if domain:
            identities.append(f"company-domain:{domain}")
        return identities

    def _read(self, leads: list[NormalizedLead]) -> None:
        emails = {lead.email for lead in leads if lead.email}
        phones = {lead.phone.e164 for lead in leads if lead.phone is not None and lead.phone.e164}
        domains = {d for lead in leads if (d := company_domain(lead, self.free_domains))}
        names = {name_key(lead.company) for lead in leads if lead.company}
        contacts: list[Contact] = []
        if emails:
            contacts += self.session.scalars(
                select(Contact).where(Contact.email_normalized.in_(emails))
            ).all()
        if phones:
            contacts += self.session.scalars(
                select(Contact).where(Contact.phone.in_(phones)).order_by(Contact.id)
            ).all()
        for contact in sorted(set(contacts), key=lambda c: c.id):
            if contact.email_normalized:
                self.by_email[contact.email_normalized] = contact
            if contact.phone:
                self.by_phone.setdefault(contact.phone, []).append(contact)
        customer_ids = {contact.customer_id for contact in contacts}
        conditions: list[ColumnElement[bool]] = []
        if domains:
            conditions.append(Customer.domain.in_(domains))
        if names:
            conditions.append(
                Customer.name_key.in_(names) & (Customer.kind == CustomerKind.COMPANY)
            )
        if customer_ids:
            conditions.append(Customer.id.in_(customer_ids))
        if conditions:
            for customer in self.session.scalars(
                select(Customer).where(or_(*conditions)).order_by(Customer.id)
            ):
                self._index_customer(customer)

    def _index_customer(self, customer: Customer) -> None:
        if customer.domain:
            self.by_domain.setdefault(customer.domain, customer)
        if customer.kind == CustomerKind.COMPANY:
            companies = self.by_name.setdefault(customer.name_key, [])
            if customer not in companies:
                companies.append(customer)

    # --- matching, as capture_lead does it, in memory --------------------------------

    def _find_contact(self, lead: NormalizedLead) -> tuple[Contact | None, str | None]:
        if lead.email and lead.email in self.by_email:
            return self.by_email[lead.email], "email"
        if lead.phone is not None and lead.phone.e164:
            for contact in self.by_phone.get(lead.phone.e164, []):
                if not lead.email or contact.email_normalized is None:
                    return contact, "phone"
        return None, None

    def _match(self, lead: NormalizedLead) -> ContactMatch:
        contact, matched_by = self._find_contact(lead)
        if contact is not None:
            changes = merge_into_contact(contact, lead)
            self._index_contact(contact)
            return ContactMatch(contact, contact.customer, matched_by, False, False, changes)
        customer, created, customer_changes = self._choose_customer(lead)
        contact = Contact(**lead_contact_values(lead), attributes={}, tags=[])
        contact.customer = customer
        self.new_contacts.append(contact)
        self._index_contact(contact)
        return ContactMatch(
            contact,
            customer,
            None,
            True,
            created,
            new_contact_changes(contact),
            customer_changes,
        )

    def _index_contact(self, contact: Contact) -> None:
        if contact.email_normalized:
            self.by_email[contact.email_normalized] = contact
        if contact.phone:
            same_phone = self.by_phone.setdefault(contact.phone, [])
            if contact not in same_phone:
                same_phone.append(contact)

    def _choose_customer(self, lead: NormalizedLead) -> tuple[Customer, bool, Changes]:
        domain = company_domain(lead, self.free_domains)
        if domain is not None and domain in self.by_domain:
            customer = self.by_domain[domain]
            return customer, False, merge_into_customer(customer, lead)
        if lead.company:
            companies = self.by_name.get(name_key(lead.company))
            if companies:
                customer = companies[0]
                changes = merge_into_customer(customer, lead)
                if customer.domain is None and domain is not None:
                    changes["domain"] = {"from": None, "to": domain}
                    customer.domain = domain
                    self.by_domain[domain] = customer
                return customer, False, changes
        if domain is not None:
            customer = Customer(**company_values(lead, domain=domain))
        else:
            customer = unsaved_customer(lead)
        self.new_customers.append(customer)
        self._index_customer(customer)
        return customer, True, {}

    def _assign_primaries(self) -> None:
        """A new contact is primary when its customer had none (the first such one wins)."""
        stored = {c.customer.id for c in self.new_contacts if c.customer not in self.new_customers}
        if stored:
            self.with_primary.update(
                self.session.scalars(
                    select(Contact.customer_id).where(
                        Contact.customer_id.in_(stored), Contact.is_primary
                    )
                )
            )
        with_primary_new: set[int] = set()
        for contact in self.new_contacts:
            customer = contact.customer
            if customer in self.new_customers:
                contact.is_primary = id(customer) not in with_primary_new
                with_primary_new.add(id(customer))
            else:
                contact.is_primary = customer.id not in self.with_primary
                self.with_primary.add(customer.id)

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
        codes = sorted({item.lead.utm_campaign for item in self.items if item.lead.utm_campaign})
        if not codes:
            return {}
        now = utcnow()
        session = self.session
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
                    for code in codes
                ]
            )
            .on_conflict_do_nothing(index_elements=["code"])
        )
        campaigns = {
            campaign.code: campaign
            for campaign in session.scalars(
                select(MarketingCampaign).where(MarketingCampaign.code.in_(codes))
            )
        }
        pairs = sorted(
            {
                (campaigns[item.lead.utm_campaign].id, match.customer.id)
                for item, match in zip(self.items, matches, strict=True)
                if item.lead.utm_campaign
            }
        )
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
                    for campaign_id, customer_id in pairs
                ]
            )
            .on_conflict_do_nothing(index_elements=["campaign_id", "customer_id"])
        )
        session.execute(
            update(CampaignMember)
            .where(
                tuple_(CampaignMember.campaign_id, CampaignMember.customer_id).in_(pairs),
                CampaignMember.status == MemberStatus.TARGETED,
            )
            .values(status=MemberStatus.RESPONDED, responded_at=now)
            .execution_options(synchronize_session=False)
        )
        return campaigns
