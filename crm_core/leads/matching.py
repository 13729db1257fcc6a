"""Who a lead is: an existing contact, or a new one and the customer it joins.

Matching order: the normalized e-mail, then the E.164 phone. A phone only
matches a contact without an e-mail (or a lead without one): two different
addresses are two people, even behind one office line.

A new contact joins a company matched by e-mail domain (free-mail and
disposable domains never name a company), else by company name, else a new
company (when the lead names one or comes from a company domain), else a new
person customer.

``resolve_contacts`` is the one resolver, for one lead or many: it locks every
identity its leads may create (one statement), reads every contact and company
they could match (one query per kind), decides each lead in memory, in order,
against what it read and what earlier leads created, and inserts the new
customers and contacts together. A writer that got in between anyway makes the
INSERT fail with ``IntegrityError``; the caller retries (``contacts``) or falls
back (``batch``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Container, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, or_, select
from sqlalchemy.orm import Session

from crm_core.base.locks import lock_identities
from crm_core.customers.models import Contact, Customer, CustomerKind, LifecycleStage
from crm_core.customers.services import name_key, surviving
from crm_core.db import utcnow
from crm_core.leads.merge import (
    Changes,
    lead_contact_values,
    merge_into_contact,
    merge_into_customer,
    new_contact_changes,
)
from crm_core.leads.normalize import NormalizedLead, is_free_or_disposable


@dataclass
class ContactMatch:
    """The contact a lead is about, its customer, and what capturing it changed."""

    contact: Contact
    customer: Customer
    matched_by: str | None
    created_contact: bool
    created_customer: bool
    changes: Changes = field(default_factory=dict)
    customer_changes: Changes = field(default_factory=dict)


def resolve_contacts(
    session: Session,
    leads: Sequence[NormalizedLead],
    *,
    free_domains: Container[str],
    last_activity_at: dt.datetime | None = None,
) -> list[ContactMatch]:
    """The contact of each lead, in order: matched (and merged) or created with its customer.

    New customers and contacts are inserted before this returns; a contact
    gets ``last_activity_at`` in that INSERT when it is given.
    """
    return Resolver(session, free_domains).resolve(leads, last_activity_at=last_activity_at)


def company_domain(lead: NormalizedLead, free_domains: Container[str]) -> str | None:
    """The lead's e-mail domain when it can name a company (not free-mail, not disposable)."""
    domain = lead.domain
    if domain is None or is_free_or_disposable(domain, free_domains):
        return None
    return domain


def identities_to_lock(lead: NormalizedLead) -> list[str]:
    """The identities without a unique constraint that creating this lead's contact relies on."""
    identities = []
    if lead.company:
        identities.append(f"company-name:{name_key(lead.company)}")
    if not lead.email and lead.phone is not None and lead.phone.e164:
        identities.append(f"contact-phone:{lead.phone.e164}")
    return identities


def company_values(lead: NormalizedLead, *, domain: str) -> dict[str, Any]:
    """The columns of the company a lead from ``domain`` creates."""
    name = lead.company or domain
    now = utcnow()
    return {
        "kind": CustomerKind.COMPANY,
        "name": name,
        "name_key": name_key(name),
        "domain": domain,
        "country": lead.country,
        "lifecycle_stage": LifecycleStage.LEAD,
        "tags": [],
        "created_at": now,
        "updated_at": now,
    }


def unsaved_customer(lead: NormalizedLead) -> Customer:
    """A new company (named by the lead) or person customer, not yet added to a session."""
    if lead.company:
        customer = Customer(
            kind=CustomerKind.COMPANY,
            name=lead.company,
            name_key=name_key(lead.company),
            country=lead.country,
        )
    else:
        values = lead_contact_values(lead)
        name = lead.full_name or lead.email_display or values["phone"] or values["phone_raw"]
        customer = Customer(
            kind=CustomerKind.PERSON,
            name=name,
            name_key=name_key(name),
            email=lead.email,
            phone=values["phone"],
            country=lead.country,
        )
    customer.lifecycle_stage = LifecycleStage.LEAD
    return customer


class Resolver:
    """The in-memory state of one resolution: what it read, and what its leads created."""

    def __init__(self, session: Session, free_domains: Container[str]) -> None:
        self.session = session
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

    def resolve(
        self, leads: Sequence[NormalizedLead], *, last_activity_at: dt.datetime | None
    ) -> list[ContactMatch]:
        """Lock, read, match each lead in order, then insert what is new."""
        lock_identities(self.session, [key for lead in leads for key in self._identities(lead)])
        self._read(leads)
        # New contacts join stored customers' collections before they are added to the
        # session: nothing may flush until they are.
        with self.session.no_autoflush:
            matches = [self._match(lead) for lead in leads]
            self._assign_primaries()
        if last_activity_at is not None:
            for match in matches:
                match.contact.last_activity_at = last_activity_at
        # One INSERT for the new customers (each comes in with its first contact), one for
        # the new contacts; both in the order of the leads.
        self.session.add_all(self.new_contacts)
        self.session.flush()
        return matches

    def _identities(self, lead: NormalizedLead) -> list[str]:
        identities = identities_to_lock(lead)
        if lead.email:
            identities.append(f"contact-email:{lead.email}")
        domain = company_domain(lead, self.free_domains)
        if domain:
            identities.append(f"company-domain:{domain}")
        return identities

    def _read(self, leads: Sequence[NormalizedLead]) -> None:
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
        live: list[Contact] = []
        for found in sorted(set(contacts), key=lambda c: c.id):
            # A merged contact's address and phone lead to the contact it was merged into.
            contact = surviving(self.session, found)
            live.append(contact)
            if found.email_normalized:
                self.by_email[found.email_normalized] = contact
            if found.phone:
                same_phone = self.by_phone.setdefault(found.phone, [])
                if contact not in same_phone:
                    same_phone.append(contact)
        customer_ids = {contact.customer_id for contact in live}
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
                self._index_customer(customer, surviving(self.session, customer))

    def _index_customer(self, found: Customer, customer: Customer | None = None) -> None:
        """Index ``customer`` under ``found``'s domain and name (``found`` may be merged)."""
        customer = customer or found
        if found.domain:
            self.by_domain.setdefault(found.domain, customer)
        if found.kind == CustomerKind.COMPANY:
            companies = self.by_name.setdefault(found.name_key, [])
            if customer not in companies:
                companies.append(customer)

    # --- matching, in memory ----------------------------------------------------------

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
        contact = Contact(**lead_contact_values(lead), attributes=dict(lead.attributes), tags=[])
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
