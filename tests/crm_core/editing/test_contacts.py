"""Contacts written through the editing services; one primary contact per customer, always."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from crm_core.customers.models import Contact
from crm_core.editing import contacts, customers
from crm_core.editing.records import RecordConflict, RecordNotFound
from crm_core.errors import InvalidInput
from crm_core.people.models import AuditEntry
from crm_core.people.permissions import Actor, PermissionDenied

AGENT = Actor.for_key(key_id=5, name="desk", scopes=["read", "write"])
READER = Actor.for_key(key_id=6, name="reader", scopes=["read"])


@pytest.fixture
def customer_id(session: Session) -> int:
    document = {
        "name": "Acme",
        "primary_contact": {"first_name": "Ada", "email": "ada@acme.example"},
    }
    return customers.create_customer(session, actor=AGENT, document=document).id


def _primaries(session: Session, customer_id: int) -> list[int]:
    query = select(Contact.id).where(Contact.customer_id == customer_id, Contact.is_primary)
    return list(session.scalars(query))


def test_a_new_contact_is_normalized_and_not_primary_unless_asked(
    session: Session, customer_id: int
) -> None:
    contact = contacts.create_contact(
        session,
        actor=AGENT,
        customer_id=customer_id,
        document={
            "full_name": "Charles Babbage",
            "email": " Charles@Acme.example ",
            "phone": "030 1234567",
            "country": "de",
        },
        default_region="US",
    )
    assert (contact.email, contact.email_normalized) == (
        "Charles@Acme.example",
        "charles@acme.example",
    )
    assert contact.country == "DE"
    assert contact.phone == "+49301234567"  # read in the contact's country, not the default
    assert not contact.is_primary
    promoted = contacts.create_contact(
        session,
        actor=AGENT,
        customer_id=customer_id,
        document={"first_name": "Grace", "primary": True},
    )
    assert _primaries(session, customer_id) == [promoted.id]
    assert promoted.full_name == "Grace"


def test_making_a_contact_primary_keeps_exactly_one(session: Session, customer_id: int) -> None:
    [first] = _primaries(session, customer_id)
    second = contacts.create_contact(
        session, actor=AGENT, customer_id=customer_id, document={"first_name": "B"}
    )
    contacts.make_primary(session, actor=AGENT, contact_id=second.id)
    assert _primaries(session, customer_id) == [second.id]
    contacts.make_primary(session, actor=AGENT, contact_id=second.id)  # again: nothing changes
    entries = session.scalars(
        select(AuditEntry).where(AuditEntry.entity == "customer", AuditEntry.action == "update")
    ).all()
    assert [e.changes for e in entries] == [
        {"primary_contact_id": {"before": first, "after": second.id}}
    ]
    assert entries[0].actor == "api_key:desk"


def test_an_address_belongs_to_one_contact(session: Session, customer_id: int) -> None:
    other = contacts.create_contact(
        session, actor=AGENT, customer_id=customer_id, document={"email": "b@acme.example"}
    )
    with pytest.raises(RecordConflict) as refused:
        contacts.update_contact(
            session, actor=AGENT, contact_id=other.id, document={"email": "ADA@acme.example"}
        )
    assert refused.value.field == "email"
    with pytest.raises(RecordConflict):
        contacts.create_contact(
            session, actor=AGENT, customer_id=customer_id, document={"email": "ada@ACME.example"}
        )


def test_a_patch_merges_attributes_and_clears_with_null(session: Session, customer_id: int) -> None:
    contact = contacts.create_contact(
        session,
        actor=AGENT,
        customer_id=customer_id,
        document={
            "first_name": "Bo",
            "last_name": "Li",
            "phone": "+1 212 555 0100",
            "attributes": {"a": 1, "b": {"c": 2}},
        },
    )
    contacts.update_contact(
        session,
        actor=AGENT,
        contact_id=contact.id,
        document={
            "last_name": "Lee",
            "phone": None,
            "attributes": {"a": None, "b": {"d": 3}},
            "tags": ["x"],
        },
    )
    assert contact.full_name == "Bo Lee"
    assert (contact.phone, contact.phone_raw, contact.phone_valid) == (None, None, None)
    assert contact.attributes == {"b": {"c": 2, "d": 3}}
    contacts.update_contact(
        session, actor=AGENT, contact_id=contact.id, document={"attributes": None}
    )
    assert contact.attributes == {}
    with pytest.raises(InvalidInput) as refused:
        contacts.update_contact(
            session, actor=AGENT, contact_id=contact.id, document={"primary": True, "email": 5}
        )
    assert {e.field for e in refused.value.errors} == {"primary", "email"}


def test_the_primary_contact_is_not_deleted_but_others_are(
    session: Session, customer_id: int
) -> None:
    [primary] = _primaries(session, customer_id)
    with pytest.raises(RecordConflict, match="primary contact"):
        contacts.delete_contact(session, actor=AGENT, contact_id=primary)
    other = contacts.create_contact(
        session, actor=AGENT, customer_id=customer_id, document={"first_name": "C"}
    )
    other_id = other.id
    contacts.delete_contact(session, actor=AGENT, contact_id=other_id)
    assert session.get(Contact, other_id) is None
    entry = session.scalars(
        select(AuditEntry).where(AuditEntry.entity_id == other_id, AuditEntry.action == "delete")
    ).one()
    assert entry.changes["first_name"] == {"before": "C", "after": None}
    with pytest.raises(RecordNotFound):
        contacts.delete_contact(session, actor=AGENT, contact_id=other_id)


def test_a_read_key_changes_no_contact(session: Session, customer_id: int) -> None:
    [primary] = _primaries(session, customer_id)
    before = session.scalar(select(func.count()).select_from(AuditEntry))
    for call in (
        lambda: contacts.create_contact(
            session, actor=READER, customer_id=customer_id, document={}
        ),
        lambda: contacts.update_contact(session, actor=READER, contact_id=primary, document={}),
        lambda: contacts.make_primary(session, actor=READER, contact_id=primary),
        lambda: contacts.delete_contact(session, actor=READER, contact_id=primary),
    ):
        with pytest.raises(PermissionDenied, match="'write' scope"):
            call()
    assert session.scalar(select(func.count()).select_from(AuditEntry)) == before
