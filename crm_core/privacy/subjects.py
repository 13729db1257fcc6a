"""The data subject: a person's contact, the contacts merged into it, the customer that is them,
and everything that points at them, gathered once for an export or an erasure."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from crm_core.activities.models import Activity
from crm_core.base.entities import EntityType
from crm_core.customers.models import Contact, Customer, CustomerKind
from crm_core.customers.services import surviving
from crm_core.ingestion.models import EventEntity, InboxEvent
from crm_core.privacy.matching import (
    as_text,
    bytes_as_text,
    mentions,
    name_needles,
    phone_needles,
    spellings,
)
from crm_core.sales.models import Opportunity
from crm_core.support.models import SupportCase


class SubjectNotFound(LookupError):
    """No contact has this id or this address."""


@dataclass
class Subject:
    """One person and the ids of every row that holds their data."""

    contact_id: int
    # The contact and every contact merged into it (their tombstones keep addresses).
    contact_ids: list[int]
    # Customers that are this person (kind ``person``, every contact of theirs erased with
    # them); a company they work for is not one of them.
    customer_ids: list[int]
    addresses: frozenset[str]
    names: frozenset[str]
    phones: frozenset[str]
    # First and last names alone: too common to search for, but redacted in rows found.
    name_parts: frozenset[str] = frozenset()
    case_ids: set[int] = field(default_factory=set)
    opportunity_ids: set[int] = field(default_factory=set)
    activity_ids: set[int] = field(default_factory=set)
    event_ids: set[int] = field(default_factory=set)

    @property
    def needles(self) -> frozenset[str]:
        """Every lower-cased spelling of the person's addresses, names and phone numbers."""
        return self.addresses | self.names | self.phones

    @property
    def redactable(self) -> frozenset[str]:
        """What ``redact`` removes from a row already found to be about them."""
        return self.needles | self.name_parts

    @property
    def address_needles(self) -> frozenset[str]:
        return frozenset(spellings(self.addresses))


def find_contact(
    session: Session, *, contact_id: int | None = None, email: str | None = None
) -> Contact:
    """The contact by id or by address (a merged one's survivor); ``SubjectNotFound``."""
    contact: Contact | None = None
    if contact_id is not None:
        contact = session.get(Contact, contact_id) if 0 < contact_id < 2**63 else None
        missing = f"no contact {contact_id}"
    else:
        normalized = (email or "").strip().lower()
        contact = session.scalars(
            select(Contact).where(Contact.email_normalized == normalized)
        ).first()
        missing = f"no contact has the address {normalized}"
    if contact is None:
        raise SubjectNotFound(missing)
    return surviving(session, contact)


def gather(session: Session, contact: Contact) -> Subject:
    """The subject of ``contact`` with the ids of every row that holds their data."""
    contacts = _with_merged(session, contact)
    customers = _own_customers(session, contacts)
    subject = Subject(
        contact_id=contact.id,
        contact_ids=[c.id for c in contacts],
        customer_ids=[c.id for c in customers],
        addresses=frozenset(
            a.strip().lower()
            for a in [
                *(c.email for c in contacts),
                *(c.email_normalized for c in contacts),
                *(c.email for c in customers),
            ]
            if a and a.strip()
        ),
        names=frozenset(
            name_needles(
                [
                    *(c.full_name for c in contacts),
                    *(f"{c.first_name or ''} {c.last_name or ''}" for c in contacts),
                    *(c.name for c in customers),
                ]
            )
        ),
        phones=frozenset(
            phone_needles(
                [
                    *(p for c in contacts for p in (c.phone, c.phone_raw)),
                    *(c.phone for c in customers),
                ]
            )
        ),
        name_parts=frozenset(
            spellings(
                part
                for c in contacts
                for part in (c.first_name, c.last_name)
                if part and len(part.strip()) >= 2
            )
        ),
    )
    _gather_rows(session, subject)
    return subject


def _with_merged(session: Session, contact: Contact) -> list[Contact]:
    """``contact`` and every contact merged into it, at any depth."""
    found = [contact]
    frontier = [contact.id]
    while frontier:
        merged = list(session.scalars(select(Contact).where(Contact.merged_into.in_(frontier))))
        merged = [c for c in merged if c.id not in {f.id for f in found}]
        found.extend(merged)
        frontier = [c.id for c in merged]
    return found


def _own_customers(session: Session, contacts: list[Contact]) -> list[Customer]:
    """The person customers whose every contact is one of ``contacts``."""
    ids = {c.id for c in contacts}
    owned = []
    for customer_id in sorted({c.customer_id for c in contacts}):
        customer = session.get_one(Customer, customer_id)
        others = session.scalars(
            select(Contact.id).where(Contact.customer_id == customer_id, Contact.id.not_in(ids))
        ).first()
        if customer.kind == CustomerKind.PERSON and others is None:
            owned.append(customer)
    return owned


def _gather_rows(session: Session, subject: Subject) -> None:
    """The cases, deals, activities and inbox events that hold the subject's data."""
    contacts, customers = subject.contact_ids, subject.customer_ids
    subject.case_ids = set(
        session.scalars(
            select(SupportCase.id).where(
                or_(SupportCase.contact_id.in_(contacts), SupportCase.customer_id.in_(customers))
            )
        )
    )
    subject.opportunity_ids = set(
        session.scalars(
            select(Opportunity.id).where(
                or_(Opportunity.contact_id.in_(contacts), Opportunity.customer_id.in_(customers))
            )
        )
    )
    linked_activities = or_(
        Activity.contact_id.in_(contacts),
        Activity.customer_id.in_(customers),
        Activity.support_case_id.in_(sorted(subject.case_ids)),
        mentions(session, as_text(Activity.summary), subject.needles),
        mentions(session, as_text(Activity.details), subject.needles),
    )
    subject.activity_ids = set(session.scalars(select(Activity.id).where(linked_activities)))
    subject.event_ids = _events(session, subject)
    by_event = select(Activity.id).where(Activity.event_id.in_(sorted(subject.event_ids)))
    subject.activity_ids |= set(session.scalars(by_event))


def _events(session: Session, subject: Subject) -> set[int]:
    """Inbox events linked to the subject's rows, or whose body holds one of their addresses."""
    links = {
        EntityType.CONTACT: subject.contact_ids,
        EntityType.CUSTOMER: subject.customer_ids,
        EntityType.SUPPORT_CASE: subject.case_ids,
        EntityType.ACTIVITY: subject.activity_ids,
        EntityType.OPPORTUNITY: subject.opportunity_ids,
    }
    linked = or_(
        *(
            and_(EventEntity.entity_type == kind.value, EventEntity.entity_id.in_(sorted(ids)))
            for kind, ids in links.items()
            if ids
        )
    )
    found = set(session.scalars(select(EventEntity.event_id).where(linked).distinct()))
    # Every body still kept is read once: an erasure is rare, and retention keeps them few.
    by_address = select(InboxEvent.id).where(
        InboxEvent.body_removed_at.is_(None),
        mentions(session, bytes_as_text(session, InboxEvent.body), subject.address_needles),
    )
    return found | set(session.scalars(by_address))
