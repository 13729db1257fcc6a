"""Customers written through the editing services: validation, merge patches, delete, audit."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from crm_core.base.entities import ExternalRef
from crm_core.customers.models import Contact, Customer
from crm_core.editing import customers
from crm_core.editing.records import RecordConflict, RecordNotFound
from crm_core.errors import InvalidInput
from crm_core.people.models import AuditEntry
from crm_core.people.permissions import Actor, PermissionDenied
from tests.factories import ContactFactory, OrderFactory, SourceFactory

AGENT = Actor.for_user(user_id=1, email="agent@example.com", role="agent")
VIEWER = Actor.for_user(user_id=2, email="viewer@example.com", role="viewer")
NEW = {
    "name": "  Acme Ltd ",
    "kind": "company",
    "country": "Germany",
    "tags": ["vip", "vip", "eu"],
    "attributes": {"tier": "gold", "seats": 40},
    "primary_contact": {"first_name": "Ada", "last_name": "Lovelace", "email": "Ada@Acme.example"},
}


def _entries(session: Session, entity: str, entity_id: int) -> list[AuditEntry]:
    query = select(AuditEntry).where(AuditEntry.entity == entity, AuditEntry.entity_id == entity_id)
    return list(session.scalars(query.order_by(AuditEntry.id)))


def test_a_customer_is_created_with_its_primary_contact_and_audited(session: Session) -> None:
    customer = customers.create_customer(session, actor=AGENT, document=NEW, default_region="US")
    assert (customer.name, customer.name_key, customer.kind) == ("Acme Ltd", "acme ltd", "company")
    assert customer.country == "DE"
    assert customer.tags == ["vip", "eu"]
    assert customer.attributes == {"tier": "gold", "seats": 40}
    [contact] = customer.contacts
    assert contact.is_primary
    assert (contact.email_normalized, contact.full_name) == ("ada@acme.example", "Ada Lovelace")
    [entry] = _entries(session, "customer", customer.id)
    assert (entry.actor, entry.action) == ("user:agent@example.com", "create")
    assert entry.changes["name"] == {"before": None, "after": "Acme Ltd"}
    assert (
        _entries(session, "contact", contact.id)[0].changes["email"]["after"] == "Ada@Acme.example"
    )


def test_every_bad_field_is_named_at_once(session: Session) -> None:
    document = {
        "name": "",
        "kind": "robot",
        "colour": "red",
        "country": "Atlantis",
        "primary_contact": {"email": "not an address", "tags": "vip"},
    }
    with pytest.raises(InvalidInput) as refused:
        customers.create_customer(session, actor=AGENT, document=document)
    assert {e.field for e in refused.value.errors} == {
        "name",
        "kind",
        "colour",
        "country",
        "primary_contact.email",
        "primary_contact.tags",
    }
    for missing in ({}, {"name": "x"}):
        with pytest.raises(InvalidInput) as refused:
            customers.create_customer(session, actor=AGENT, document=missing)
        assert "primary_contact" in {e.field for e in refused.value.errors}
    with pytest.raises(InvalidInput, match="JSON object"):
        customers.create_customer(session, actor=AGENT, document=["not", "an", "object"])
    assert session.scalar(select(func.count()).select_from(Customer)) == 0


def test_a_viewer_writes_nothing(session: Session) -> None:
    with pytest.raises(PermissionDenied):
        customers.create_customer(session, actor=VIEWER, document=NEW)
    contact = ContactFactory(is_primary=True)
    with pytest.raises(PermissionDenied):
        customers.update_customer(
            session, actor=VIEWER, customer_id=contact.customer_id, document={"name": "x"}
        )
    with pytest.raises(PermissionDenied):
        customers.delete_customer(session, actor=VIEWER, customer_id=contact.customer_id)
    assert session.scalar(select(func.count()).select_from(AuditEntry)) == 0


def test_a_merge_patch_changes_only_what_it_names(session: Session) -> None:
    customer = customers.create_customer(session, actor=AGENT, document=NEW)
    patch: dict[str, Any] = {
        "lifecycle_stage": "customer",
        "country": None,
        "tags": ["renewal"],
        "attributes": {"tier": None, "region": {"name": "north"}},
    }
    customers.update_customer(session, actor=AGENT, customer_id=customer.id, document=patch)
    assert customer.lifecycle_stage == "customer"
    assert customer.country is None
    assert customer.name == "Acme Ltd"  # not named: left alone
    assert customer.tags == ["renewal"]
    assert customer.attributes == {"seats": 40, "region": {"name": "north"}}
    update = _entries(session, "customer", customer.id)[-1]
    assert set(update.changes) == {"lifecycle_stage", "country", "tags", "attributes"}
    assert update.changes["country"] == {"before": "DE", "after": None}
    # A patch that changes nothing leaves no entry.
    customers.update_customer(
        session, actor=AGENT, customer_id=customer.id, document={"tags": ["renewal"]}
    )
    assert len(_entries(session, "customer", customer.id)) == 2


@pytest.mark.parametrize("field", ["name", "kind", "lifecycle_stage"])
def test_required_fields_cannot_be_cleared(session: Session, field: str) -> None:
    customer = customers.create_customer(session, actor=AGENT, document=NEW)
    with pytest.raises(InvalidInput) as refused:
        customers.update_customer(
            session, actor=AGENT, customer_id=customer.id, document={field: None}
        )
    assert [e.field for e in refused.value.errors] == [field]


def test_unknown_customers_are_not_found(session: Session) -> None:
    with pytest.raises(RecordNotFound):
        customers.update_customer(session, actor=AGENT, customer_id=999_999, document={})
    with pytest.raises(RecordNotFound):
        customers.delete_customer(session, actor=AGENT, customer_id=999_999)


def test_deleting_a_customer_takes_its_contacts_and_their_external_ids(session: Session) -> None:
    customer = customers.create_customer(session, actor=AGENT, document=NEW)
    contact_id = customer.contacts[0].id
    source = SourceFactory()
    session.add_all(
        [
            ExternalRef(
                source_id=source.id,
                entity_type="customer",
                external_id="c-1",
                entity_id=customer.id,
            ),
            ExternalRef(
                source_id=source.id, entity_type="contact", external_id="p-1", entity_id=contact_id
            ),
        ]
    )
    session.flush()
    customer_id = customer.id
    customers.delete_customer(session, actor=AGENT, customer_id=customer_id)
    session.expire_all()
    assert session.get(Customer, customer_id) is None
    assert session.get(Contact, contact_id) is None
    assert session.scalar(select(func.count()).select_from(ExternalRef)) == 0
    entry = _entries(session, "customer", customer_id)[-1]
    assert entry.action == "delete"
    assert entry.changes["name"] == {"before": "Acme Ltd", "after": None}
    assert entry.changes["contacts"] == {"before": [contact_id], "after": None}


def test_a_customer_with_orders_is_kept(session: Session) -> None:
    customer = customers.create_customer(session, actor=AGENT, document=NEW)
    OrderFactory(customer_id=customer.id)
    with pytest.raises(RecordConflict, match="has orders"):
        customers.delete_customer(session, actor=AGENT, customer_id=customer.id)
