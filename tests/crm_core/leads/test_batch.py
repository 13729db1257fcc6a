"""capture_leads: a batch ends exactly as capturing its leads one by one would.

The same leads, against the same stored contacts, companies, campaigns and
deals, go once through ``capture_lead`` one at a time and once through
``capture_leads`` as one batch; every table they write must come out the
same (ids compared by rank, timestamps left out), on SQLite and PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import Engine, Table, func, insert, select
from sqlalchemy.orm import Session

from crm_core import models as m
from crm_core.ingestion.commands import normalize_lead
from crm_core.leads import matching
from crm_core.leads.batch import BatchConflict, LeadItem, capture_leads
from crm_core.leads.normalize import NormalizedLead, free_mail_domains
from crm_core.leads.services import LeadResult, capture_lead
from crm_core.payloads.schemas import LeadPayload
from tests.factories import (
    CampaignMemberFactory,
    ContactFactory,
    CustomerFactory,
    MarketingCampaignFactory,
    OpportunityFactory,
    SourceFactory,
)

LEADS: list[dict[str, Any]] = [
    # A new company from its domain, with a deal.
    {"email": "ada@acme.example", "full_name": "Ada Lovelace", "company": "Acme Ltd",
     "deal": {"name": "Pilot", "amount": "1200.00", "currency": "eur"}},
    # Same domain, another person: joins Acme, not primary; the same deal in other spacing.
    {"email": "bob@acme.example", "first_name": "Bob", "deal": {"name": "  pilot "}},
    # Ada again: fills her phone and title, nothing overwritten.
    {"email": "ADA@acme.example", "phone": "+44 20 7946 0958", "job_title": "CTO",
     "full_name": "Someone Else"},
    # Free mail, no company: a person customer.
    {"email": "carol@gmail.com", "full_name": "Carol Free", "country": "France"},
    # Free mail naming a stored company (no domain): joins it.
    {"email": "ivan@gmail.com", "company": "Initech", "utm_campaign": "spring"},
    # A company domain naming a stored company without one: the company gets the domain.
    {"email": "dan@globex.example", "company": "GLOBEX", "country": "DE"},
    # Phone only, matching a stored phone-only contact.
    {"phone": "+1 415 555 0100", "first_name": "Phil", "external_id": "crm-1"},
    # Phone only, new; then the same phone with an address (a different person).
    {"phone": "(415) 555-0101", "full_name": "Pam Phone"},
    {"phone": "+14155550101", "email": "pam@initrode.example"},
    # A stored contact at a company with a primary; the stored campaign and deal.
    {"email": "eve@existing.example", "last_name": "Stored", "utm_campaign": "spring",
     "deal": {"name": "Big deal", "close_date": "2027-01-31"}},
    # A new contact at that company, and a new campaign code.
    {"email": "frank@existing.example", "utm_campaign": "autumn", "external_id": "crm-1"},
    # An unparseable phone is kept flagged; a new domain without a company name.
    {"email": "gus@newdomain.example", "phone": "12", "full_name": "Gus"},
    # The same person twice in one batch, the second time with more.
    {"email": "hal@hooli.example"},
    {"email": "hal@hooli.example", "full_name": "Hal Hooli", "company": "Hooli",
     "utm_campaign": "autumn", "deal": {}},
]  # fmt: skip

TIMESTAMPS = {"created_at", "updated_at", "occurred_at", "last_activity_at", "added_at",
              "responded_at", "opened_at"}  # fmt: skip
# Each table and the tables its id columns point into.
TABLES: dict[str, dict[str, str]] = {
    "sources": {},
    "customers": {},
    "contacts": {"customer_id": "customers"},
    "marketing_campaigns": {},
    "campaign_members": {"campaign_id": "marketing_campaigns", "customer_id": "customers"},
    "opportunities": {
        "customer_id": "customers",
        "contact_id": "contacts",
        "source_id": "sources",
    },
    "external_refs": {"entity_id": "contacts", "source_id": "sources"},
    "activities": {
        "customer_id": "customers",
        "contact_id": "contacts",
        "opportunity_id": "opportunities",
        "campaign_id": "marketing_campaigns",
    },
}


def seed(session: Session) -> int:
    """Stored rows the leads match: companies by name and domain, a phone, a campaign, a deal."""
    CustomerFactory(name="Initech", name_key="initech", domain=None)
    CustomerFactory(name="Globex", name_key="globex", domain=None)
    existing = CustomerFactory(
        name="Existing Co", name_key="existing co", domain="existing.example"
    )
    ContactFactory(
        customer=existing,
        email="eve@existing.example",
        email_normalized="eve@existing.example",
        is_primary=True,
        first_name="Eve",
    )
    person = CustomerFactory(kind=m.CustomerKind.PERSON, name="+14155550100", name_key="x")
    ContactFactory(
        customer=person,
        email=None,
        email_normalized=None,
        phone="+14155550100",
        first_name=None,
        is_primary=True,
    )
    spring = MarketingCampaignFactory(code="spring")
    CampaignMemberFactory(campaign_id=spring.id, customer_id=existing.id)
    OpportunityFactory(customer=existing, name="Big Deal", stage=m.OpportunityStage.QUALIFIED)
    source = SourceFactory()
    session.flush()
    return int(source.id)


def normalized(fields: dict[str, Any]) -> NormalizedLead:
    return normalize_lead(LeadPayload(**fields), default_region="US")


def snapshot(session: Session) -> dict[str, list[dict[str, Any]]]:
    """Every written table, ids replaced by their rank in their table."""
    session.flush()
    metadata = m.Customer.metadata
    ranks: dict[str, dict[int, int]] = {}
    rows: dict[str, list[dict[str, Any]]] = {}
    for name in TABLES:
        table: Table = metadata.tables[name]
        key = list(table.primary_key.columns)
        found = [dict(r._mapping) for r in session.execute(select(table).order_by(*key))]
        ranks[name] = {row["id"]: rank for rank, row in enumerate(found) if "id" in row}
        rows[name] = found
    for name, links in TABLES.items():
        for row in rows[name]:
            if "id" in row:
                row["id"] = ranks[name][row["id"]]
            for column, target in links.items():
                if row.get(column) is not None:
                    row[column] = ranks[target][row[column]]
            for column in TIMESTAMPS & row.keys():
                row[column] = row[column] is not None
            # How many flushes changed a row, not what it holds: one by one flushes more.
            row.pop("version", None)
        rows[name].sort(key=repr)  # rows without an id of their own: in a stable order
    # Each run made its own source (with its own name); only its rank is compared.
    rows["sources"] = [{"id": row["id"]} for row in rows["sources"]]
    return rows


def ranked(results: list[LeadResult], session: Session) -> list[tuple[Any, ...]]:
    snap_ids = {
        name: {
            row_id: rank
            for rank, row_id in enumerate(
                session.scalars(select(m.Customer.metadata.tables[name].c.id).order_by("id"))
            )
        }
        for name in ("customers", "contacts", "activities")
    }
    return [
        (
            snap_ids["customers"][r.customer_id],
            snap_ids["contacts"][r.contact_id],
            snap_ids["activities"][r.activity_id],
            r.opportunity_id is not None,
            r.campaign_id is not None,
            r.created_contact,
            r.created_customer,
        )
        for r in results
    ]


def both_ways(
    session: Session, leads: list[dict[str, Any]], prepare: Callable[[Session], int]
) -> tuple[Any, Any]:
    """(one by one, as a batch): the tables and the results, each from the same start."""
    free = free_mail_domains()
    outcomes = []
    for batched in (False, True):
        nested = session.begin_nested()
        source_id = prepare(session)
        items = [LeadItem(None, source_id, normalized(fields)) for fields in leads]
        if batched:
            results = capture_leads(session, items, free_domains=free)
        else:
            results = [
                capture_lead(
                    session, source_id=i.source_id, event_id=None, lead=i.lead, free_domains=free
                )
                for i in items
            ]
        outcomes.append((snapshot(session), ranked(results, session)))
        nested.rollback()
    return outcomes[0], outcomes[1]


def test_a_batch_writes_what_capturing_its_leads_one_by_one_writes(session: Session) -> None:
    (one_tables, one_results), (batch_tables, batch_results) = both_ways(session, LEADS, seed)
    for table in TABLES:
        assert batch_tables[table] == one_tables[table], table
    assert batch_results == one_results
    # The scenario does exercise what it claims to.
    contacts = one_tables["contacts"]
    assert sum(c["is_primary"] for c in contacts) == len(one_tables["customers"])
    assert len([o for o in one_tables["opportunities"]]) == 3  # Pilot, Big Deal, Hooli's
    assert {a["details"]["matched_by"] for a in one_tables["activities"]} == {
        None,
        "email",
        "phone",
    }


@pytest.mark.parametrize("size", [1, 2, 7])
def test_every_prefix_of_the_leads_agrees_too(session: Session, size: int) -> None:
    # Smaller batches meet the stored rows in other states (a first lead of a company...).
    (one_tables, one_results), (batch_tables, batch_results) = both_ways(
        session, LEADS[:size], seed
    )
    assert batch_tables == one_tables
    assert batch_results == one_results


def test_leads_captured_before_write_nothing_and_give_the_earlier_result(
    session: Session,
) -> None:
    source_id = seed(session)
    events = [
        m.InboxEvent(source_id=source_id, kind="leads", webhook_id=f"w{n}",
                     content_type="application/json", body=b"{}", status="processing")
        for n in range(3)
    ]  # fmt: skip
    session.add_all(events)
    session.flush()
    free = free_mail_domains()
    items = [LeadItem(e.id, source_id, normalized(LEADS[n])) for n, e in enumerate(events)]
    first = capture_leads(session, items[:2], free_domains=free)
    activities = session.scalar(select(func.count()).select_from(m.Activity))
    again = capture_leads(session, items, free_domains=free)
    assert [r.replayed for r in again] == [True, True, False]
    assert [r.activity_id for r in again[:2]] == [r.activity_id for r in first]
    assert session.scalar(select(func.count()).select_from(m.Activity)) == (activities or 0) + 1


def test_one_capture_time_for_the_whole_batch(session: Session) -> None:
    source_id = seed(session)
    items = [LeadItem(None, source_id, normalized(fields)) for fields in LEADS[:4]]
    results = capture_leads(session, items, free_domains=free_mail_domains())
    times = {session.get_one(m.Activity, r.activity_id).occurred_at for r in results}
    assert len(times) == 1
    [moment] = times
    contact = session.get_one(m.Contact, results[0].contact_id)
    assert contact.last_activity_at == moment
    assert abs(moment.replace(tzinfo=dt.UTC) - dt.datetime.now(dt.UTC)) < dt.timedelta(minutes=5)


def test_a_writer_that_took_an_address_meanwhile_is_a_conflict(
    postgres_committed: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Something that does not take the batch's locks (an order's buyer, say) creates the
    # address between the batch's read and its INSERT: the batch must not half-succeed.
    read = matching.Resolver._read

    def read_then_race(self: Any, leads: list[NormalizedLead]) -> None:
        read(self, leads)
        with postgres_committed.begin() as other:
            customer_id = other.execute(
                insert(m.Customer).returning(m.Customer.id),
                {"kind": "person", "name": "Racer", "name_key": "racer", "tags": [],
                 "lifecycle_stage": "lead"},
            ).scalar_one()  # fmt: skip
            other.execute(
                insert(m.Contact),
                {"customer_id": customer_id, "is_primary": True, "email": "race@acme.example",
                 "email_normalized": "race@acme.example", "attributes": {}, "tags": []},
            )  # fmt: skip

    monkeypatch.setattr(matching.Resolver, "_read", read_then_race)
    items = [LeadItem(None, None, normalized({"email": "race@acme.example"}))]
    with Session(postgres_committed) as session:
        with pytest.raises(BatchConflict, match="concurrent writer"):
            capture_leads(session, items, free_domains=free_mail_domains())
        session.rollback()
    with Session(postgres_committed) as session:
        assert session.scalar(select(func.count()).select_from(m.Contact)) == 1
