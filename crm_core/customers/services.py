"""Customer and contact services: every customer has exactly one primary contact."""

from __future__ import annotations

import re
from typing import Any, TypeVar

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from crm_core.customers.models import Contact, Customer, CustomerKind, LifecycleStage

_SPACES = re.compile(r"\s+")
R = TypeVar("R", Contact, Customer)


def name_key(name: str) -> str:
    """The matching key of a customer name: case-folded, whitespace collapsed."""
    return _SPACES.sub(" ", name).strip().casefold()


def create_customer(
    session: Session,
    *,
    name: str,
    primary_contact: Contact,
    kind: CustomerKind = CustomerKind.PERSON,
    lifecycle_stage: LifecycleStage = LifecycleStage.LEAD,
    **fields: Any,
) -> Customer:
    """Create a customer together with its primary contact (a customer never has none)."""
    customer = Customer(
        name=name,
        name_key=name_key(name),
        kind=kind,
        lifecycle_stage=lifecycle_stage,
        **fields,
    )
    primary_contact.is_primary = True
    customer.contacts.append(primary_contact)
    session.add(customer)
    session.flush()
    return customer


def add_contact(session: Session, *, customer: Customer, contact: Contact) -> Contact:
    """Attach ``contact`` to ``customer``; it becomes primary when the customer has none."""
    has_primary = session.scalar(
        select(Contact.id).where(Contact.customer_id == customer.id, Contact.is_primary).limit(1)
    )
    contact.is_primary = has_primary is None
    contact.customer_id = customer.id
    session.add(contact)
    session.flush()
    return contact


def set_primary_contact(session: Session, *, contact: Contact) -> None:
    """Make ``contact`` its customer's primary contact, demoting the previous one."""
    session.execute(
        update(Contact)
        .where(
            Contact.customer_id == contact.customer_id, Contact.is_primary, Contact.id != contact.id
        )
        .values(is_primary=False, version=Contact.version + 1)
        .execution_options(synchronize_session="fetch")
    )
    # The demotion must reach the database before the promotion, or the
    # partial unique index sees two primaries for a moment.
    session.flush()
    contact.is_primary = True
    session.flush()


def surviving(session: Session, row: R) -> R:
    """``row`` itself, or the contact or customer it was merged into (followed to the end)."""
    seen = {row.id}
    while row.merged_into is not None and row.merged_into not in seen:
        seen.add(row.merged_into)
        row = session.get_one(type(row), row.merged_into)
    return row
