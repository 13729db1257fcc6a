"""The contact a lead (or a buyer's, a requester's address) is about, found or created.

Two transactions creating the same new person end with one contact and one
company per domain: the e-mail and the domain are unique columns, a conflict
rolls back a savepoint and the retry finds the winner's rows; what is not
unique (a company name, a phone) is serialized with advisory locks.
"""

from __future__ import annotations

from collections.abc import Container
from dataclasses import dataclass, field

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from crm_core.customers.models import Contact, Customer
from crm_core.customers.services import add_contact
from crm_core.leads.locks import lock_identities
from crm_core.leads.matching import choose_customer, find_contact, identities_to_lock
from crm_core.leads.merge import (
    Changes,
    lead_contact_values,
    merge_into_contact,
    new_contact_changes,
)
from crm_core.leads.normalize import NormalizedLead, free_mail_domains, normalize_email, split_name

# A conflict means another transaction just created the row we wanted; the
# retry finds it. More than a few in a row means something else is wrong.
RACE_RETRIES = 3


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


def find_or_create_contact(
    session: Session, *, lead: NormalizedLead, free_domains: Container[str] | None = None
) -> ContactMatch:
    """The lead's contact: matched (and merged) or created with its customer, race-safe."""
    domains = free_domains if free_domains is not None else free_mail_domains()
    # Outside the savepoint: rolling back to a savepoint releases locks taken in it.
    lock_identities(session, identities_to_lock(lead))
    for attempt in range(1, RACE_RETRIES + 1):
        try:
            with session.begin_nested():
                return _match_or_create(session, lead=lead, free_domains=domains)
        except IntegrityError:
            if attempt == RACE_RETRIES:
                raise
    raise AssertionError("unreachable")  # pragma: no cover


def _match_or_create(
    session: Session, *, lead: NormalizedLead, free_domains: Container[str]
) -> ContactMatch:
    contact, matched_by = find_contact(session, lead=lead)
    if contact is not None:
        changes = merge_into_contact(contact, lead)
        session.flush()
        return ContactMatch(contact, contact.customer, matched_by, False, False, changes)
    choice = choose_customer(session, lead=lead, free_domains=free_domains)
    contact = Contact(**lead_contact_values(lead), attributes={}, tags=[])
    if choice.created:
        # A customer this lead just made has no contacts: no need to ask for its primary.
        contact.customer_id = choice.customer.id
        contact.is_primary = True
        session.add(contact)
        session.flush()
    else:
        add_contact(session, customer=choice.customer, contact=contact)
    return ContactMatch(
        contact,
        choice.customer,
        None,
        True,
        choice.created,
        new_contact_changes(contact),
        choice.changes,
    )


def contact_for_address(
    session: Session,
    *,
    email: str,
    name: str | None = None,
    free_domains: Container[str] | None = None,
) -> ContactMatch:
    """The contact of an e-mail address (a buyer, a requester), created when unknown.

    Raises ``InvalidField`` for an address that is not one.
    """
    first, last = split_name(name)
    lead = NormalizedLead(
        email=normalize_email(email),
        email_display=email.strip(),
        first_name=first,
        last_name=last,
        full_name=" ".join(name.split()) if name and name.strip() else None,
    )
    return find_or_create_contact(session, lead=lead, free_domains=free_domains)
