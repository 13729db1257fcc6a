"""Merging customers and contacts: every related row moves, nothing points at the merged one."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Table, func, select
from sqlalchemy.orm import Session

from crm_core import merges
from crm_core import models as m
from crm_core.editing.records import RecordConflict, RecordMerged
from crm_core.errors import InvalidInput
from crm_core.ingestion.commands import normalize_lead
from crm_core.ingestion.handlers import find_contact
from crm_core.leads.matching import resolve_contacts
from crm_core.payloads.schemas import LeadPayload
from crm_core.people.models import AuditEntry
from crm_core.people.permissions import Actor, PermissionDenied
from tests.factories import (
    AgreementFactory,
    ContactFactory,
    CustomerFactory,
    InboxEventFactory,
    MarketingCampaignFactory,
    OpportunityFactory,
    OrderFactory,
    SourceFactory,
    SupportCaseFactory,
)

AGENT = Actor.for_user(user_id=1, email="agent@example.com", role="agent")
VIEWER = Actor.for_user(user_id=2, email="viewer@example.com", role="viewer")
NOW = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)


def _references(to: str) -> Iterator[tuple[Table, Any]]:
    """Every (table, column) with a foreign key to ``to`` (``customers`` or ``contacts``)."""
    for table in m.metadata.sorted_tables:
        for fk in table.foreign_keys:
            if fk.column.table.name == to and fk.parent.name != "merged_into":
                yield table, fk.parent


def _pointing_at(session: Session, to: str, ident: int) -> dict[str, int]:
    counts = {}
    for table, column in _references(to):
        n = session.scalar(select(func.count()).select_from(table).where(column == ident))
        if n:
            counts[f"{table.name}.{column.name}"] = n
    return counts


def _activity(session: Session, **links: Any) -> m.Activity:
    activity = m.Activity(type="note", summary="x", occurred_at=NOW, details={}, **links)
    session.add(activity)
    session.flush()
    return activity


def _everything_of(session: Session, customer: m.Customer, contact: m.Contact) -> None:
    """One row in each table that points at the customer or the contact."""
    source = SourceFactory()
    event = InboxEventFactory(source=source)
    opportunity = OpportunityFactory(customer=customer, contact_id=contact.id)
    AgreementFactory(customer_id=customer.id, origin_opportunity_id=opportunity.id)
    OrderFactory(customer_id=customer.id, contact_id=contact.id)
    case = SupportCaseFactory(customer_id=customer.id, contact_id=contact.id)
    _activity(session, customer_id=customer.id, contact_id=contact.id)
    campaign = MarketingCampaignFactory()
    session.add_all(
        [
            m.CampaignMember(campaign_id=campaign.id, customer_id=customer.id),
            m.CampaignSend(campaign_id=campaign.id, contact_id=contact.id, email="a@x.example"),
            m.FollowUpTask(
                rule="stale",
                subject_type="contact",
                subject_id=contact.id,
                customer_id=customer.id,
                contact_id=contact.id,
                support_case_id=case.id,
                title="Call back",
                due_at=NOW,
            ),
            m.ExternalRef(
                source_id=source.id, entity_type="customer", external_id="c", entity_id=customer.id
            ),
            m.ExternalRef(
                source_id=source.id, entity_type="contact", external_id="p", entity_id=contact.id
            ),
            m.EventEntity(event_id=event.id, entity_type="customer", entity_id=customer.id),
            m.EventEntity(event_id=event.id, entity_type="contact", entity_id=contact.id),
        ]
    )
    session.flush()


def _refs(session: Session, entity_type: str, ident: int) -> int:
    return len(
        session.scalars(
            select(m.ExternalRef).where(
                m.ExternalRef.entity_type == entity_type, m.ExternalRef.entity_id == ident
            )
        ).all()
    ) + len(
        session.scalars(
            select(m.EventEntity).where(
                m.EventEntity.entity_type == entity_type, m.EventEntity.entity_id == ident
            )
        ).all()
    )


def test_every_table_with_a_key_to_customers_or_contacts_is_covered() -> None:
    """A new foreign key to either table must be taught to the merge (and to this test)."""
    covered = {
        "contacts.customer_id",
        "opportunities.customer_id",
        "opportunities.contact_id",
        "agreements.customer_id",
        "orders.customer_id",
        "orders.contact_id",
        "activities.customer_id",
        "activities.contact_id",
        "support_cases.customer_id",
        "support_cases.contact_id",
        "followup_tasks.customer_id",
        "followup_tasks.contact_id",
        "campaign_members.customer_id",
        "campaign_sends.contact_id",
    }
    found = {
        f"{table.name}.{column.name}"
        for to in ("customers", "contacts")
        for table, column in _references(to)
    }
    assert found == covered


def test_a_customer_merge_moves_every_row_and_keeps_one_primary(session: Session) -> None:
    merged, survivor = CustomerFactory(), CustomerFactory()
    old_primary = ContactFactory(customer=merged, is_primary=True)
    other = ContactFactory(customer=merged)
    kept_primary = ContactFactory(customer=survivor, is_primary=True)
    _everything_of(session, merged, old_primary)
    shared_campaign = MarketingCampaignFactory()
    session.add_all(
        [
            m.CampaignMember(campaign_id=shared_campaign.id, customer_id=merged.id),
            m.CampaignMember(campaign_id=shared_campaign.id, customer_id=survivor.id),
        ]
    )
    merged.domain, merged.phone, merged.tags = "acme.example", "+4930123", ["old"]
    survivor.tags = ["new"]
    session.flush()
    before = _pointing_at(session, "customers", merged.id)
    assert len(before) == 8  # one row in every kind of table, contacts counted twice

    into, moved = merges.merge_customers(
        session, actor=AGENT, customer_id=merged.id, document={"into": survivor.id}
    )

    assert into.id == survivor.id
    assert _pointing_at(session, "customers", merged.id) == {}
    assert _refs(session, "customer", merged.id) == 0
    assert moved == {
        "contacts": 2,
        "activities": 1,
        "cases": 1,
        "orders": 1,
        "opportunities": 1,
        "agreements": 1,
        "followups": 1,
        "campaign_members": 1,  # the shared campaign's membership was already the survivor's
        "external_refs": 1,
        "event_links": 1,
    }
    after = _pointing_at(session, "customers", survivor.id)
    assert after["contacts.customer_id"] == 3
    assert after["campaign_members.customer_id"] == 2
    primaries = session.scalars(
        select(m.Contact.id).where(m.Contact.customer_id == survivor.id, m.Contact.is_primary)
    ).all()
    assert primaries == [kept_primary.id]
    assert {c.id for c in session.scalars(select(m.Contact))} >= {old_primary.id, other.id}
    tombstone = session.get_one(m.Customer, merged.id)
    assert tombstone.merged_into == survivor.id
    assert (into.domain, into.phone, into.tags) == ("acme.example", "+4930123", ["new", "old"])
    assert tombstone.domain is None  # the unique domain moved with the company
    note = session.scalars(
        select(m.Activity).where(m.Activity.customer_id == survivor.id, m.Activity.type == "note")
    ).all()[-1]
    assert note.details["merge"]["merged"] == merged.id
    entry = session.scalars(
        select(AuditEntry).where(AuditEntry.entity_id == merged.id, AuditEntry.action == "merge")
    ).one()
    assert entry.changes["merged_into"] == {"before": None, "after": survivor.id}


def test_a_contact_merge_moves_every_row_and_the_address(session: Session) -> None:
    customer = CustomerFactory()
    merged = ContactFactory(customer=customer, is_primary=True, phone="+4930999")
    survivor = ContactFactory(customer=customer, email=None, email_normalized=None)
    _everything_of(session, customer, merged)
    campaign = MarketingCampaignFactory()
    session.add_all(
        [  # both were sent this run: two messages, each stays with its own contact
            m.CampaignSend(campaign_id=campaign.id, contact_id=merged.id, email="a@x.example"),
            m.CampaignSend(campaign_id=campaign.id, contact_id=survivor.id, email="b@x.example"),
        ]
    )
    session.flush()
    address = merged.email_normalized

    into, moved = merges.merge_contacts(
        session, actor=AGENT, contact_id=merged.id, document={"into": survivor.id}
    )

    assert moved == {
        "activities": 1,
        "cases": 1,
        "orders": 1,
        "opportunities": 1,
        "followups": 1,
        "campaign_sends": 1,
        "external_refs": 1,
        "event_links": 1,
    }
    assert _pointing_at(session, "contacts", merged.id) == {"campaign_sends.contact_id": 1}
    assert _refs(session, "contact", merged.id) == 0
    task = session.scalars(select(m.FollowUpTask)).one()
    assert (task.subject_id, task.contact_id) == (survivor.id, survivor.id)
    assert into.is_primary
    assert not session.get_one(m.Contact, merged.id).is_primary
    assert into.email_normalized == address
    assert into.phone == "+4930999"
    assert session.get_one(m.Contact, merged.id).merged_into == survivor.id
    assert find_contact(session, address).id == survivor.id  # type: ignore[arg-type, union-attr]


def test_a_merged_contacts_address_and_phone_lead_to_the_survivor(session: Session) -> None:
    customer = CustomerFactory()
    merged = ContactFactory(customer=customer, is_primary=True, phone="+4930555")
    survivor = ContactFactory(customer=customer)
    merges.merge_contacts(
        session, actor=AGENT, contact_id=merged.id, document={"into": survivor.id}
    )
    for lead in ({"email": merged.email}, {"phone": "+4930555"}):
        normalized = normalize_lead(LeadPayload.model_validate(lead), default_region="DE")
        [match] = resolve_contacts(session, [normalized], free_domains=frozenset())
        assert match.contact.id == survivor.id, lead


def _consent(contact: m.Contact, status: str | None, days: int, source: int | None) -> None:
    contact.marketing_consent = status
    contact.marketing_consent_at = NOW - dt.timedelta(days=days) if status else None
    contact.marketing_consent_source_id = source
    contact.marketing_consent_method = f"method-{days}" if status else None


@pytest.mark.parametrize(
    ("merged_says", "survivor_says", "kept"),
    [
        pytest.param(("denied", 1), ("granted", 5), ("denied", 1), id="merged-is-newer"),
        pytest.param(("denied", 5), ("granted", 1), ("granted", 1), id="survivor-is-newer"),
        pytest.param(("granted", 3), (None, 0), ("granted", 3), id="survivor-never-stated"),
        pytest.param((None, 0), ("denied", 3), ("denied", 3), id="merged-never-stated"),
        pytest.param(("unknown", 1), ("denied", 5), ("denied", 5), id="unknown-says-nothing"),
    ],
)
def test_a_contact_merge_keeps_the_newest_consent_statement(
    session: Session,
    merged_says: tuple[str | None, int],
    survivor_says: tuple[str | None, int],
    kept: tuple[str, int],
) -> None:
    customer = CustomerFactory()
    form, shop = SourceFactory(), SourceFactory()
    merged = ContactFactory(customer=customer, is_primary=True)
    survivor = ContactFactory(customer=customer)
    _consent(merged, *merged_says, source=form.id if merged_says[0] else None)
    _consent(survivor, *survivor_says, source=shop.id if survivor_says[0] else None)
    session.flush()
    from_merged = kept == merged_says

    into, _ = merges.merge_contacts(
        session, actor=AGENT, contact_id=merged.id, document={"into": survivor.id}
    )

    session.flush()
    session.expire_all()
    into = session.get_one(m.Contact, survivor.id)
    assert (into.marketing_consent, into.marketing_consent_method) == (kept[0], f"method-{kept[1]}")
    assert into.marketing_consent_at is not None
    assert into.marketing_consent_at.replace(tzinfo=dt.UTC) == NOW - dt.timedelta(days=kept[1])
    assert into.marketing_consent_source_id == (form.id if from_merged else shop.id)
    update = session.scalars(
        select(AuditEntry).where(
            AuditEntry.entity == "contact",
            AuditEntry.entity_id == survivor.id,
            AuditEntry.action == "update",
        )
    ).one_or_none()
    audited = set(update.changes) if update is not None else set()
    assert ("marketing_consent" in audited) == (from_merged and survivor_says[0] != kept[0])


def test_merges_that_would_break_a_rule_are_refused(session: Session) -> None:
    a, b = CustomerFactory(), CustomerFactory()
    ca, cb = ContactFactory(customer=a, is_primary=True), ContactFactory(customer=b)
    with pytest.raises(InvalidInput) as itself:
        merges.merge_customers(session, actor=AGENT, customer_id=a.id, document={"into": a.id})
    assert itself.value.errors[0].loc == ("into",)
    with pytest.raises(InvalidInput) as across:
        merges.merge_contacts(session, actor=AGENT, contact_id=ca.id, document={"into": cb.id})
    assert "merge the customers first" in across.value.errors[0].msg
    with pytest.raises(InvalidInput):
        merges.merge_customers(session, actor=AGENT, customer_id=a.id, document={"into": "b"})
    with pytest.raises(PermissionDenied):
        merges.merge_customers(session, actor=VIEWER, customer_id=a.id, document={"into": b.id})
    c = CustomerFactory()
    merges.merge_customers(session, actor=AGENT, customer_id=a.id, document={"into": b.id})
    with pytest.raises(RecordMerged) as again:
        merges.merge_customers(session, actor=AGENT, customer_id=a.id, document={"into": c.id})
    assert again.value.into == b.id
    with pytest.raises(RecordConflict) as into_merged:
        merges.merge_customers(session, actor=AGENT, customer_id=c.id, document={"into": a.id})
    assert into_merged.value.field == "into"
