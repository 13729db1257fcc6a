"""Contacts written by people: create, update (merge patch), make primary, delete.

A customer always has exactly one primary contact: a new contact of a customer without one
becomes primary, making one primary demotes the other, and the primary contact cannot be
deleted (make another primary first, or delete the customer).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from crm_core.attachments.services import erase_contact_attachments
from crm_core.base.entities import EntityType
from crm_core.customers.consent import ConsentStatement, apply_consent, supersedes
from crm_core.customers.models import ConsentStatus, Contact, Customer
from crm_core.customers.services import add_contact, set_primary_contact
from crm_core.db import utcnow
from crm_core.editing import records
from crm_core.editing.records import RecordConflict, RecordMerged, RecordNotFound
from crm_core.editing.schemas import (
    ConsentUpdate,
    ContactCreate,
    ContactFields,
    merge_patch,
    parse,
    parse_patch,
)
from crm_core.errors import FieldError, InvalidInput
from crm_core.leads.normalize import join_name, normalize_phone
from crm_core.notifications.events import ContactSummary, ContactUpdated
from crm_core.notifications.services import notify
from crm_core.people import audit
from crm_core.people.permissions import Actor, Permission

AUDITED = (
    "customer_id",
    "is_primary",
    "first_name",
    "last_name",
    "full_name",
    "email",
    "phone",
    "phone_raw",
    "job_title",
    "country",
    "notes",
    "tags",
    "attributes",
    "marketing_consent",
    "marketing_consent_at",
    "marketing_consent_source_id",
    "marketing_consent_method",
)
# A statement's time may run this far ahead of ours (the client's clock).
CLOCK_LEEWAY = dt.timedelta(minutes=5)


def _get(session: Session, contact_id: int) -> Contact:
    contact = session.get(Contact, contact_id, with_for_update=True)
    if contact is None:
        raise RecordNotFound("contact", contact_id)
    if contact.merged_into is not None:
        raise RecordMerged("contact", contact_id, contact.merged_into)
    return contact


def _set_email(session: Session, contact: Contact, value: str | None) -> None:
    if value is None:
        contact.email = contact.email_normalized = None
        return
    normalized = records.normalized_email(value)
    taken = session.scalar(
        select(Contact.id).where(Contact.email_normalized == normalized, Contact.id != contact.id)
    )
    if taken is not None:
        raise RecordConflict(f"contact {taken} already has this address", field="email")
    contact.email, contact.email_normalized = value, normalized


def apply_fields(
    session: Session, contact: Contact, fields: dict[str, Any], *, default_region: str | None
) -> None:
    """Set the client's ``fields`` on ``contact``: normalized, ``None`` clearing a field."""
    if "country" in fields:  # first: a national phone number is read in the country
        contact.country = fields["country"]
    for name, value in fields.items():
        if name == "email":
            _set_email(session, contact, value)
        elif name == "phone":
            phone = (
                normalize_phone(value, region=contact.country or default_region) if value else None
            )
            contact.phone = phone.e164 if phone else None
            contact.phone_raw = phone.raw if phone else None
            contact.phone_valid = phone.valid if phone else None
        elif name == "tags":
            contact.tags = records.clean_tags(value or [])
        elif name == "attributes":
            contact.attributes = (
                {} if value is None else merge_patch(contact.attributes or {}, value)
            )
        elif name == "marketing_consent":
            state_consent(contact, value)
        elif name != "country":
            setattr(contact, name, value)
    if "full_name" not in fields and fields.keys() & {"first_name", "last_name"}:
        contact.full_name = join_name(contact.first_name, contact.last_name)


def state_consent(contact: Contact, value: ConsentUpdate | dict[str, Any] | None) -> None:
    """Record the consent a person stated to the client, by the rule senders' statements
    follow (``apply_consent``), with no source: the audit entry says who recorded it."""
    field = "marketing_consent"
    if value is None:
        raise InvalidInput(
            [FieldError((field,), "cannot be null: state it again (granted or denied)")]
        )
    stated = value if isinstance(value, ConsentUpdate) else ConsentUpdate.model_validate(value)
    now = utcnow()
    if stated.at is not None and stated.at > now + CLOCK_LEEWAY:
        raise InvalidInput([FieldError((field, "at"), "must not be in the future")])
    statement = ConsentStatement(ConsentStatus(stated.status), stated.at or now, stated.method)
    if not supersedes(statement, contact):
        on_record = contact.marketing_consent_at
        raise RecordConflict(
            f"a later statement is on record ({contact.marketing_consent}"
            f" at {on_record.isoformat() if on_record else 'an unknown time'})",
            field=field,
        )
    apply_consent(contact, statement, source_id=None)


def create_contact(
    session: Session,
    *,
    actor: Actor,
    customer_id: int,
    document: Any,
    default_region: str | None = None,
) -> Contact:
    """Add a contact to a customer; primary if asked, or if the customer has none."""
    actor.require(Permission.WRITE)
    data = parse(ContactCreate, document)
    customer = session.get(Customer, customer_id, with_for_update=True)
    if customer is None:
        raise RecordNotFound("customer", customer_id)
    if customer.merged_into is not None:
        raise RecordMerged("customer", customer_id, customer.merged_into)
    contact = Contact(tags=[], attributes={})
    fields = data.model_dump(exclude_unset=True, exclude={"primary"})
    apply_fields(session, contact, fields, default_region=default_region)
    add_contact(session, customer=customer, contact=contact)
    if data.primary and not contact.is_primary:
        set_primary_contact(session, contact=contact)
    changes = audit.created(records.snapshot(contact, AUDITED))
    audit.record(
        session,
        actor=actor,
        entity="contact",
        entity_id=contact.id,
        action="create",
        changes=changes,
    )
    return contact


def update_contact(
    session: Session,
    *,
    actor: Actor,
    contact_id: int,
    document: Any,
    default_region: str | None = None,
) -> Contact:
    """Apply a JSON merge patch to a contact; only the fields sent change."""
    actor.require(Permission.WRITE)
    patch, sent = parse_patch(ContactFields, document)
    contact = _get(session, contact_id)
    before = records.snapshot(contact, AUDITED)
    fields = {name: getattr(patch, name) for name in sent}
    apply_fields(session, contact, fields, default_region=default_region)
    session.flush()
    changes = audit.changes_between(before, records.snapshot(contact, AUDITED))
    if changes:
        audit.record(
            session,
            actor=actor,
            entity="contact",
            entity_id=contact.id,
            action="update",
            changes=changes,
        )
        notify(
            session,
            ContactUpdated(contact=ContactSummary.model_validate(contact), changes=changes),
        )
    return contact


def make_primary(session: Session, *, actor: Actor, contact_id: int) -> Contact:
    """Make a contact its customer's primary contact; the previous one is demoted."""
    actor.require(Permission.WRITE)
    contact = _get(session, contact_id)
    # Lock the customer: two concurrent promotions of different contacts serialize here.
    session.get(Customer, contact.customer_id, with_for_update=True)
    previous = session.scalar(
        select(Contact.id).where(Contact.customer_id == contact.customer_id, Contact.is_primary)
    )
    if previous == contact.id:
        return contact
    set_primary_contact(session, contact=contact)
    audit.record(
        session,
        actor=actor,
        entity="customer",
        entity_id=contact.customer_id,
        action="update",
        changes={"primary_contact_id": {"before": previous, "after": contact.id}},
    )
    return contact


def delete_contact(session: Session, *, actor: Actor, contact_id: int) -> None:
    """Delete a contact that is not its customer's primary one, and its attachments (their
    blobs are released after the commit: ``crm_core.attachments.services.released_keys``)."""
    actor.require(Permission.WRITE)
    contact = _get(session, contact_id)
    if contact.is_primary:
        raise RecordConflict(
            f"contact {contact_id} is its customer's primary contact: make another contact"
            " primary first, or delete the customer"
        )
    before = records.snapshot(contact, AUDITED)
    records.forget_external_refs(session, entity_type=EntityType.CONTACT, ids=[contact.id])
    # Its activities stay on the customer's timeline; the files the contact sent do not.
    erase_contact_attachments(session, contact_id=contact.id)
    session.delete(contact)
    session.flush()
    changes = audit.removed(before)
    audit.record(
        session,
        actor=actor,
        entity="contact",
        entity_id=contact_id,
        action="delete",
        changes=changes,
    )
