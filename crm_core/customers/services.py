"""Customer services: a name's matching key, and a customer created with its primary contact."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy.orm import Session

from crm_core.customers.models import Contact, Customer, CustomerKind, LifecycleStage

_SPACES = re.compile(r"\s+")


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
