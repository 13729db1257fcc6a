"""Requesters a help desk names only by its own user id (Zendesk's events carry no address).

Such a requester is a contact found through an external reference of the
source, ``(source, contact, user id)``; the first ticket creates it with its
customer, named as the help desk names the person, or by the id until a name comes.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from crm_core.base.entities import EntityType, ExternalRef
from crm_core.customers.models import Contact
from crm_core.customers.services import create_customer
from crm_core.db import dialect_insert, utcnow


def contact_for_reference(
    session: Session, *, source_id: int, external_id: str, name: str | None
) -> Contact:
    """The contact the source calls ``external_id``, created when unknown.

    A concurrent transaction creating the same one makes this one fail with an
    ``IntegrityError`` on the reference: run it in a savepoint and try again.
    """
    reference = session.scalars(
        select(ExternalRef).where(
            ExternalRef.source_id == source_id,
            ExternalRef.entity_type == EntityType.CONTACT,
            ExternalRef.external_id == external_id,
        )
    ).first()
    contact = session.get(Contact, reference.entity_id) if reference is not None else None
    if contact is not None:
        if name and not contact.full_name:
            contact.full_name = name
        return contact
    if reference is not None:  # the contact was deleted since: forget the old reference
        session.delete(reference)
        session.flush()
    contact = Contact(full_name=name)
    create_customer(session, name=name or f"Requester {external_id}", primary_contact=contact)
    session.add(
        ExternalRef(
            source_id=source_id,
            entity_type=EntityType.CONTACT,
            external_id=external_id,
            entity_id=contact.id,
        )
    )
    session.flush()
    return contact


def remember_contact_reference(
    session: Session, *, source_id: int, external_id: str, contact: Contact
) -> None:
    """Record that the source calls ``contact`` ``external_id`` (the first record stands)."""
    session.execute(
        dialect_insert(session, ExternalRef)
        .values(
            source_id=source_id,
            entity_type=EntityType.CONTACT,
            external_id=external_id,
            entity_id=contact.id,
            created_at=utcnow(),
        )
        .on_conflict_do_nothing(index_elements=["source_id", "entity_type", "external_id"])
    )
