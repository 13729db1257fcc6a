"""Customers written by people: create (with the primary contact), update (merge patch), delete.

A customer with orders or agreements is not deleted: those are the commercial record.
Deleting one removes its contacts, opportunities, cases, activities and follow-ups with it
(the schema cascades) and the senders' ids that pointed at them.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from crm_core.activities.models import Activity
from crm_core.attachments.services import forget_customer_attachments
from crm_core.base.entities import EntityType
from crm_core.customers.models import Contact, Customer, CustomerKind, LifecycleStage
from crm_core.customers.services import create_customer as insert_customer
from crm_core.customers.services import name_key
from crm_core.editing import contacts, records
from crm_core.editing.records import RecordConflict, RecordMerged, RecordNotFound
from crm_core.editing.schemas import (
    REQUIRED_ON_CUSTOMER,
    CustomerCreate,
    CustomerFields,
    merge_patch,
    parse,
    parse_patch,
)
from crm_core.errors import FieldError, InvalidInput
from crm_core.people import audit
from crm_core.people.permissions import Actor, Permission
from crm_core.sales.models import Agreement, Opportunity, Order
from crm_core.support.models import SupportCase

AUDITED = (
    "name",
    "kind",
    "lifecycle_stage",
    "email",
    "phone",
    "website",
    "industry",
    "address_line1",
    "address_line2",
    "city",
    "region",
    "postal_code",
    "country",
    "owner",
    "tags",
    "attributes",
)


def _get(session: Session, customer_id: int) -> Customer:
    customer = session.get(Customer, customer_id, with_for_update=True)
    if customer is None:
        raise RecordNotFound("customer", customer_id)
    if customer.merged_into is not None:
        raise RecordMerged("customer", customer_id, customer.merged_into)
    return customer


def apply_fields(customer: Customer, fields: dict[str, Any]) -> None:
    """Set the client's ``fields`` on ``customer``: normalized, ``None`` clearing a field."""
    for name, value in fields.items():
        if name == "name":
            customer.name, customer.name_key = value, name_key(value)
        elif name == "email":
            customer.email = records.normalized_email(value) if value else None
        elif name == "tags":
            customer.tags = records.clean_tags(value or [])
        elif name == "attributes":
            customer.attributes = (
                {} if value is None else merge_patch(customer.attributes or {}, value)
            )
        else:
            setattr(customer, name, value)


def create_customer(
    session: Session, *, actor: Actor, document: Any, default_region: str | None = None
) -> Customer:
    """Create a customer and its primary contact from a client's document."""
    actor.require(Permission.WRITE)
    data = parse(CustomerCreate, document)
    contact = Contact(tags=[], attributes={})
    contact_fields = data.primary_contact.model_dump(exclude_unset=True)
    try:
        contacts.apply_fields(session, contact, contact_fields, default_region=default_region)
    except InvalidInput as exc:  # name the fields inside primary_contact
        raise InvalidInput(
            [FieldError(("primary_contact", *e.loc), e.msg, e.type) for e in exc.errors]
        ) from None
    except RecordConflict as exc:
        raise RecordConflict(str(exc), field=f"primary_contact.{exc.field}") from None
    customer = insert_customer(
        session,
        name=data.name,
        primary_contact=contact,
        kind=data.kind or CustomerKind.PERSON,
        lifecycle_stage=data.lifecycle_stage or LifecycleStage.LEAD,
        tags=[],
        attributes={},
    )
    apply_fields(
        customer,
        data.model_dump(exclude_unset=True, exclude={"primary_contact", "kind", "lifecycle_stage"}),
    )
    session.flush()
    for entity, row, fields in (
        ("customer", customer, AUDITED),
        ("contact", contact, contacts.AUDITED),
    ):
        changes = audit.created(records.snapshot(row, fields))
        audit.record(
            session, actor=actor, entity=entity, entity_id=row.id, action="create", changes=changes
        )
    return customer


def update_customer(session: Session, *, actor: Actor, customer_id: int, document: Any) -> Customer:
    """Apply a JSON merge patch to a customer; only the fields sent change."""
    actor.require(Permission.WRITE)
    patch, sent = parse_patch(CustomerFields, document, not_null=REQUIRED_ON_CUSTOMER)
    customer = _get(session, customer_id)
    before = records.snapshot(customer, AUDITED)
    apply_fields(customer, {name: getattr(patch, name) for name in sent})
    session.flush()
    changes = audit.changes_between(before, records.snapshot(customer, AUDITED))
    if changes:
        audit.record(
            session,
            actor=actor,
            entity="customer",
            entity_id=customer.id,
            action="update",
            changes=changes,
        )
    return customer


def _ids(session: Session, column: Any, customer_column: Any, customer_id: int) -> list[int]:
    return list(session.scalars(select(column).where(customer_column == customer_id)))


def delete_customer(session: Session, *, actor: Actor, customer_id: int) -> None:
    """Delete a customer without orders or agreements, and everything that is only its
    (attachments too: their blobs are released after the commit, ``released_keys``)."""
    actor.require(Permission.WRITE)
    customer = _get(session, customer_id)
    for model, what in ((Order, "orders"), (Agreement, "agreements")):
        if session.scalar(select(exists().where(model.customer_id == customer_id))):
            raise RecordConflict(
                f"customer {customer_id} has {what}, which are kept: it cannot be deleted"
            )
    before = records.snapshot(customer, AUDITED)
    owned = {
        EntityType.CUSTOMER: [customer_id],
        EntityType.CONTACT: _ids(session, Contact.id, Contact.customer_id, customer_id),
        EntityType.OPPORTUNITY: _ids(session, Opportunity.id, Opportunity.customer_id, customer_id),
        EntityType.SUPPORT_CASE: _ids(
            session, SupportCase.id, SupportCase.customer_id, customer_id
        ),
        EntityType.ACTIVITY: _ids(session, Activity.id, Activity.customer_id, customer_id),
    }
    for entity_type, ids in owned.items():
        records.forget_external_refs(session, entity_type=entity_type, ids=ids)
    # Its activities go with it (ON DELETE CASCADE); their files' blobs are noted for release.
    forget_customer_attachments(session, customer_id=customer_id)
    session.delete(customer)
    session.flush()
    changes = audit.removed(before)
    changes["contacts"] = {"before": owned[EntityType.CONTACT], "after": None}
    audit.record(
        session,
        actor=actor,
        entity="customer",
        entity_id=customer_id,
        action="delete",
        changes=changes,
    )
