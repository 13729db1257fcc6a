"""Who a lead is: an existing contact, or a new one and the customer it joins.

Matching order: the normalized e-mail, then the E.164 phone. A phone only
matches a contact without an e-mail (or a lead without one): two different
addresses are two people, even behind one office line.

A new contact joins a company matched by e-mail domain (free-mail and
disposable domains never name a company), else by company name, else a new
company (when the lead names one or comes from a company domain), else a new
person customer.
"""

from __future__ import annotations

from collections.abc import Container
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from crm_core.customers.models import Contact, Customer, CustomerKind, LifecycleStage
from crm_core.customers.services import name_key
from crm_core.db import dialect_insert, utcnow
from crm_core.leads.merge import Changes, lead_contact_values, merge_into_customer
from crm_core.leads.normalize import NormalizedLead, is_free_or_disposable


@dataclass
class CustomerChoice:
    """The customer a new contact joins, and whether this lead created it."""

    customer: Customer
    created: bool
    changes: Changes = field(default_factory=dict)


def find_contact(session: Session, *, lead: NormalizedLead) -> tuple[Contact | None, str | None]:
    """The contact the lead is about and what matched it (``"email"``, ``"phone"``)."""
    if lead.email:
        by_email = session.scalar(select(Contact).where(Contact.email_normalized == lead.email))
        if by_email is not None:
            return by_email, "email"
    if lead.phone is not None and lead.phone.e164:
        query = select(Contact).where(Contact.phone == lead.phone.e164)
        if lead.email:
            query = query.where(Contact.email_normalized.is_(None))
        by_phone = session.scalar(query.order_by(Contact.id).limit(1))
        if by_phone is not None:
            return by_phone, "phone"
    return None, None


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


def choose_customer(
    session: Session, *, lead: NormalizedLead, free_domains: Container[str]
) -> CustomerChoice:
    """The customer a new contact for ``lead`` joins, found or created."""
    domain = company_domain(lead, free_domains)
    if domain is not None:
        by_domain = session.scalar(select(Customer).where(Customer.domain == domain))
        if by_domain is not None:
            return CustomerChoice(by_domain, False, merge_into_customer(by_domain, lead))
    if lead.company:
        by_name = session.scalar(
            select(Customer)
            .where(Customer.name_key == name_key(lead.company))
            .where(Customer.kind == CustomerKind.COMPANY)
            .order_by(Customer.id)
            .limit(1)
        )
        if by_name is not None:
            changes = merge_into_customer(by_name, lead)
            if by_name.domain is None and domain is not None:
                # May conflict with a company created meanwhile; the caller retries.
                changes["domain"] = {"from": None, "to": domain}
                by_name.domain = domain
            return CustomerChoice(by_name, False, changes)
    if domain is not None:
        return _company_by_domain(session, lead=lead, domain=domain)
    return CustomerChoice(_new_customer_row(session, lead=lead), True)


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


def _company_by_domain(session: Session, *, lead: NormalizedLead, domain: str) -> CustomerChoice:
    """Insert the company of ``domain``, or find the one a concurrent lead inserted."""
    inserted = session.execute(
        dialect_insert(session, Customer)
        .values(**company_values(lead, domain=domain))
        .on_conflict_do_nothing(index_elements=["domain"])
        .returning(Customer.id)
    ).scalar()
    customer = session.scalars(select(Customer).where(Customer.domain == domain)).one()
    if inserted is None:
        return CustomerChoice(customer, False, merge_into_customer(customer, lead))
    return CustomerChoice(customer, True)


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


def _new_customer_row(session: Session, *, lead: NormalizedLead) -> Customer:
    """A new company (named by the lead) or person customer, not yet with a contact."""
    customer = unsaved_customer(lead)
    session.add(customer)
    session.flush()
    return customer
