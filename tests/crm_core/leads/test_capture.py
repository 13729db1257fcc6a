"""capture_lead on SQLite and PostgreSQL: matching, merging, customers, deals, campaigns."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from crm_core import models as m
from crm_core.ingestion.commands import normalize_lead
from crm_core.leads.contacts import contact_for_address
from crm_core.leads.normalize import NormalizedLead
from crm_core.leads.services import LeadResult, capture_lead
from crm_core.payloads.schemas import LeadPayload
from tests.factories import (
    CampaignMemberFactory,
    ContactFactory,
    CustomerFactory,
    InboxEventFactory,
    MarketingCampaignFactory,
    SourceFactory,
)


def make_lead(**fields: Any) -> NormalizedLead:
    return normalize_lead(LeadPayload(**fields), default_region="US")


def capture(session: Session, **fields: Any) -> LeadResult:
    return capture_lead(session, source_id=None, event_id=None, lead=make_lead(**fields))


def count(session: Session, model: Any) -> int:
    return session.scalar(select(func.count()).select_from(model)) or 0


def test_a_lead_from_a_company_domain_creates_the_company_and_its_primary_contact(
    session: Session,
) -> None:
    result = capture(
        session, email="Ada@Acme.example", full_name="Ada Lovelace", company="Acme Ltd"
    )
    contact = session.get_one(m.Contact, result.contact_id)
    customer = session.get_one(m.Customer, result.customer_id)
    assert (result.created_contact, result.created_customer) == (True, True)
    assert contact.email_normalized == "ada@acme.example"
    assert contact.email == "Ada@Acme.example"
    assert (contact.first_name, contact.last_name) == ("Ada", "Lovelace")
    assert contact.is_primary
    assert contact.customer_id == customer.id
    assert customer.kind == m.CustomerKind.COMPANY
    assert (customer.name, customer.domain) == ("Acme Ltd", "acme.example")
    assert customer.lifecycle_stage == m.LifecycleStage.LEAD
    assert contact.last_activity_at is not None


def test_the_activity_links_what_the_lead_touched_and_records_the_new_fields(
    session: Session,
) -> None:
    result = capture(session, email="ada@acme.example", first_name="Ada", utm_source="ads")
    activity = session.get_one(m.Activity, result.activity_id)
    assert activity.type == m.ActivityType.LEAD_CAPTURED
    assert activity.direction == m.Direction.INBOUND
    assert (activity.customer_id, activity.contact_id) == (result.customer_id, result.contact_id)
    assert activity.details["created"] == {"contact": True, "customer": True}
    assert activity.details["changes"]["email_normalized"] == {
        "from": None,
        "to": "ada@acme.example",
    }
    assert activity.details["utm"] == {"source": "ads"}
    assert "new contact" in activity.summary
    assert result.entities == [
        ("customer", result.customer_id),
        ("contact", result.contact_id),
        ("activity", result.activity_id),
    ]


def test_a_second_person_at_the_same_domain_joins_the_company_not_as_primary(
    session: Session,
) -> None:
    first = capture(session, email="ada@acme.example")
    second = capture(session, email="bob@ACME.example", company="Some Other Name")
    assert second.customer_id == first.customer_id
    assert not second.created_customer
    assert not session.get_one(m.Contact, second.contact_id).is_primary
    assert session.get_one(m.Contact, first.contact_id).is_primary


def test_a_company_from_its_domain_alone_is_named_after_the_domain(session: Session) -> None:
    result = capture(session, email="ada@acme.example")
    customer = session.get_one(m.Customer, result.customer_id)
    assert (customer.kind, customer.name, customer.domain) == (
        "company",
        "acme.example",
        "acme.example",
    )


def test_free_mail_makes_a_person_customer(session: Session) -> None:
    result = capture(session, email="ada.lovelace@gmail.com", full_name="Ada Lovelace")
    customer = session.get_one(m.Customer, result.customer_id)
    assert customer.kind == m.CustomerKind.PERSON
    assert customer.domain is None
    assert customer.name == "Ada Lovelace"
    assert customer.email == "ada.lovelace@gmail.com"
    other = capture(session, email="bob@gmail.com")
    assert other.customer_id != result.customer_id


def test_a_disposable_address_never_names_a_company(session: Session) -> None:
    result = capture(session, email="x@eu.mailinator.com")
    assert session.get_one(m.Customer, result.customer_id).kind == m.CustomerKind.PERSON


def test_configured_extra_free_domains_are_not_companies(session: Session) -> None:
    result = capture_lead(
        session,
        source_id=None,
        event_id=None,
        lead=make_lead(email="ada@corp-mail.example"),
        free_domains=frozenset({"corp-mail.example"}),
    )
    customer = session.get_one(m.Customer, result.customer_id)
    assert (customer.kind, customer.domain) == ("person", None)


def test_free_mail_leads_naming_a_company_meet_in_that_company(session: Session) -> None:
    first = capture(session, email="ada@gmail.com", company="Analytical Engines")
    second = capture(session, email="bob@yahoo.com", company="  analytical   ENGINES ")
    assert first.customer_id == second.customer_id
    customer = session.get_one(m.Customer, first.customer_id)
    assert (customer.kind, customer.domain) == ("company", None)


def test_a_company_found_by_name_learns_its_domain(session: Session) -> None:
    existing = CustomerFactory(name="Acme Ltd", kind="company", domain=None)
    ContactFactory(customer=existing, is_primary=True)
    result = capture(session, email="ada@acme.example", company="ACME LTD")
    assert result.customer_id == existing.id
    assert existing.domain == "acme.example"
    activity = session.get_one(m.Activity, result.activity_id)
    assert activity.details["customer_changes"]["domain"] == {"from": None, "to": "acme.example"}
    # The next lead from that domain finds the company without naming it.
    assert capture(session, email="bob@acme.example").customer_id == existing.id


def test_the_domain_wins_over_the_company_name(session: Session) -> None:
    by_domain = CustomerFactory(name="Acme", domain="acme.example")
    ContactFactory(customer=by_domain, is_primary=True)
    CustomerFactory(name="Globex")
    result = capture(session, email="ada@acme.example", company="Globex")
    assert result.customer_id == by_domain.id


def test_a_new_contact_becomes_primary_of_a_customer_without_one(session: Session) -> None:
    company = CustomerFactory(name="Acme", domain="acme.example")
    ContactFactory(customer=company, is_primary=False)
    result = capture(session, email="ada@acme.example")
    assert result.customer_id == company.id
    assert session.get_one(m.Contact, result.contact_id).is_primary


def test_an_existing_customer_is_never_downgraded_to_lead(session: Session) -> None:
    company = CustomerFactory(
        name="Acme", domain="acme.example", lifecycle_stage=m.LifecycleStage.CUSTOMER
    )
    ContactFactory(customer=company, is_primary=True)
    capture(session, email="ada@acme.example")
    assert company.lifecycle_stage == m.LifecycleStage.CUSTOMER


def test_a_known_email_merges_filling_only_empty_fields(session: Session) -> None:
    contact = ContactFactory(
        email="ada@acme.example",
        first_name="Ada",
        last_name=None,
        full_name=None,
        job_title="Analyst",
        phone=None,
    )
    result = capture(
        session,
        email=" ADA@acme.example",
        first_name="Augusta",
        last_name="Lovelace",
        job_title=None,
        phone="+1 415 555 2671",
    )
    assert result.contact_id == contact.id
    assert not result.created_contact
    assert contact.first_name == "Ada"  # never overwritten
    assert contact.job_title == "Analyst"  # never blanked
    assert contact.last_name == "Lovelace"
    assert contact.full_name == "Augusta Lovelace"
    assert (contact.phone, contact.phone_valid) == ("+14155552671", True)
    activity = session.get_one(m.Activity, result.activity_id)
    assert activity.details["matched_by"] == "email"
    assert set(activity.details["changes"]) == {
        "last_name",
        "full_name",
        "phone",
        "phone_raw",
        "phone_valid",
    }
    assert activity.details["changes"]["last_name"] == {"from": None, "to": "Lovelace"}
    assert "updated last_name" in activity.summary


def test_a_lead_with_nothing_new_changes_nothing(session: Session) -> None:
    capture(session, email="ada@acme.example", first_name="Ada")
    again = capture(session, email="ada@acme.example", first_name="Ada")
    activity = session.get_one(m.Activity, again.activity_id)
    assert activity.details["changes"] == {}
    assert "nothing new" in activity.summary


def test_a_valid_phone_replaces_a_flagged_one_in_the_empty_e164_slot(session: Session) -> None:
    contact = ContactFactory(
        email="ada@acme.example", phone=None, phone_raw="ext 12", phone_valid=False
    )
    capture(session, email="ada@acme.example", phone="+14155552671")
    assert (contact.phone, contact.phone_raw, contact.phone_valid) == (
        "+14155552671",
        "+14155552671",
        True,
    )


def test_an_unparseable_phone_is_kept_raw_and_flagged(session: Session) -> None:
    result = capture(session, email="ada@gmail.com", phone="call after 5")
    contact = session.get_one(m.Contact, result.contact_id)
    assert (contact.phone, contact.phone_raw, contact.phone_valid) == (None, "call after 5", False)
    details = session.get_one(m.Activity, result.activity_id).details
    assert details["phone_flagged"] == "call after 5"


def test_a_phone_matches_a_contact_without_email(session: Session) -> None:
    contact = ContactFactory(email=None, email_normalized=None, phone="+14155552671")
    result = capture(session, email="ada@acme.example", phone="(415) 555-2671")
    assert result.contact_id == contact.id
    assert contact.email_normalized == "ada@acme.example"
    details = session.get_one(m.Activity, result.activity_id).details
    assert details["matched_by"] == "phone"


def test_a_phone_only_lead_matches_by_phone(session: Session) -> None:
    contact = ContactFactory(email="ada@acme.example", phone="+14155552671")
    assert capture(session, phone="415-555-2671").contact_id == contact.id


def test_a_shared_phone_does_not_merge_two_email_addresses(session: Session) -> None:
    office = ContactFactory(email="ada@acme.example", phone="+14155552671")
    result = capture(session, email="bob@acme.example", phone="+14155552671")
    assert result.contact_id != office.id
    assert result.created_contact


def test_the_email_is_matched_before_the_phone(session: Session) -> None:
    by_email = ContactFactory(email="ada@acme.example", phone=None)
    ContactFactory(email=None, email_normalized=None, phone="+14155552671")
    result = capture(session, email="ada@acme.example", phone="+14155552671")
    assert result.contact_id == by_email.id


def test_a_deal_in_the_lead_opens_an_opportunity(session: Session) -> None:
    source = SourceFactory()
    result = capture_lead(
        session,
        source_id=source.id,
        event_id=None,
        lead=make_lead(
            email="ada@acme.example",
            company="Acme",
            message="Need 40 seats",
            deal={
                "name": "40 seats",
                "amount": "1200.50",
                "currency": "eur",
                "close_date": "2026-12-31",
            },
        ),
    )
    assert result.opportunity_id is not None
    opportunity = session.get_one(m.Opportunity, result.opportunity_id)
    assert (opportunity.customer_id, opportunity.contact_id) == (
        result.customer_id,
        result.contact_id,
    )
    assert opportunity.stage == m.OpportunityStage.NEW
    assert opportunity.name == "40 seats"
    assert opportunity.amount == Decimal("1200.50")
    assert opportunity.currency == "EUR"
    assert opportunity.expected_close_date == dt.date(2026, 12, 31)
    assert opportunity.source_id == source.id
    activity = session.get_one(m.Activity, result.activity_id)
    assert activity.opportunity_id == opportunity.id
    assert activity.details["deal"]["amount"] == "1200.50"
    assert ("opportunity", opportunity.id) in result.entities


def test_a_deal_without_a_name_is_named_after_the_lead(session: Session) -> None:
    result = capture(session, email="ada@acme.example", company="Acme", deal={"amount": "10"})
    assert result.opportunity_id is not None
    assert session.get_one(m.Opportunity, result.opportunity_id).name == "Acme (from lead)"


def test_the_same_deal_twice_is_one_opportunity_filled_in(session: Session) -> None:
    first = capture(session, email="ada@acme.example", company="Acme", deal={"name": "40 seats"})
    second = capture(
        session,
        email="bob@acme.example",
        company="Acme",
        message="Budget approved",
        deal={"name": " 40  SEATS ", "amount": "990", "currency": "usd"},
    )
    assert second.opportunity_id == first.opportunity_id
    opportunity = session.get_one(m.Opportunity, first.opportunity_id)
    assert opportunity.contact_id == first.contact_id  # kept, not overwritten
    assert (opportunity.amount, opportunity.currency) == (Decimal("990"), "USD")
    assert opportunity.description == "Budget approved"
    assert count(session, m.Opportunity) == 1
    # A third lead cannot empty what is there, nor change a set amount.
    capture(
        session, email="cy@acme.example", company="Acme", deal={"name": "40 seats", "amount": "5"}
    )
    assert session.get_one(m.Opportunity, first.opportunity_id).amount == Decimal("990")


def test_a_closed_deal_of_the_same_name_is_not_reopened(session: Session) -> None:
    first = capture(session, email="ada@acme.example", company="Acme", deal={"name": "Renewal"})
    session.get_one(m.Opportunity, first.opportunity_id).stage = m.OpportunityStage.WON
    session.flush()
    again = capture(session, email="ada@acme.example", company="Acme", deal={"name": "Renewal"})
    assert again.opportunity_id != first.opportunity_id
    assert count(session, m.Opportunity) == 2


def test_the_same_deal_name_at_two_customers_is_two_opportunities(session: Session) -> None:
    one = capture(session, email="ada@acme.example", company="Acme", deal={"name": "Pilot"})
    two = capture(session, email="bo@other.example", company="Other", deal={"name": "Pilot"})
    assert one.opportunity_id != two.opportunity_id


def test_a_lead_without_a_deal_opens_no_opportunity(session: Session) -> None:
    assert capture(session, email="ada@acme.example").opportunity_id is None


def test_utm_campaign_creates_a_draft_campaign_and_a_responded_member(session: Session) -> None:
    result = capture(
        session,
        email="ada@acme.example",
        utm_source="newsletter",
        utm_medium="email",
        utm_campaign="spring-launch",
    )
    assert result.campaign_id is not None
    campaign = session.get_one(m.MarketingCampaign, result.campaign_id)
    assert (campaign.code, campaign.status) == ("spring-launch", m.CampaignStatus.DRAFT)
    member = session.get_one(m.CampaignMember, (campaign.id, result.customer_id))
    assert member.status == m.MemberStatus.RESPONDED
    assert member.responded_at is not None
    activity = session.get_one(m.Activity, result.activity_id)
    assert activity.campaign_id == campaign.id
    assert activity.details["utm"] == {
        "source": "newsletter",
        "medium": "email",
        "campaign": "spring-launch",
    }


def test_utm_campaign_reuses_the_campaign_with_that_code(session: Session) -> None:
    campaign = MarketingCampaignFactory(code="spring-launch", status=m.CampaignStatus.SENT)
    before = count(session, m.MarketingCampaign)
    first = capture(session, email="ada@acme.example", utm_campaign="spring-launch")
    second = capture(session, email="bob@gmail.com", utm_campaign="spring-launch")
    assert first.campaign_id == second.campaign_id == campaign.id
    assert count(session, m.MarketingCampaign) == before
    assert campaign.status == m.CampaignStatus.SENT


def test_a_targeted_member_becomes_responded_and_a_converted_one_stays(session: Session) -> None:
    targeted = CustomerFactory(name="Acme", domain="acme.example")
    ContactFactory(customer=targeted, is_primary=True)
    converted = CustomerFactory(name="Globex", domain="globex.example")
    ContactFactory(customer=converted, is_primary=True)
    campaign = MarketingCampaignFactory(code="spring")
    CampaignMemberFactory(campaign_id=campaign.id, customer_id=targeted.id)
    CampaignMemberFactory(
        campaign_id=campaign.id, customer_id=converted.id, status=m.MemberStatus.CONVERTED
    )
    capture(session, email="ada@acme.example", utm_campaign="spring")
    capture(session, email="bob@globex.example", utm_campaign="spring")
    session.expire_all()
    statuses = dict(
        session.execute(
            select(m.CampaignMember.customer_id, m.CampaignMember.status).where(
                m.CampaignMember.campaign_id == campaign.id
            )
        ).all()
    )
    assert statuses == {
        targeted.id: m.MemberStatus.RESPONDED,
        converted.id: m.MemberStatus.CONVERTED,
    }


def test_the_lead_external_id_becomes_an_external_reference(session: Session) -> None:
    source = SourceFactory()
    lead = make_lead(email="ada@acme.example", external_id="form-42")
    result = capture_lead(session, source_id=source.id, event_id=None, lead=lead)
    ref = session.scalars(select(m.ExternalRef).where(m.ExternalRef.source_id == source.id)).one()
    assert (ref.entity_type, ref.external_id, ref.entity_id) == (
        "contact",
        "form-42",
        result.contact_id,
    )
    # The first mapping stands; a repeat does not fail.
    other = make_lead(email="bob@acme.example", external_id="form-42")
    capture_lead(session, source_id=source.id, event_id=None, lead=other)
    assert session.scalars(select(m.ExternalRef.entity_id)).all() == [result.contact_id]


def test_capturing_the_same_event_twice_writes_nothing_more(session: Session) -> None:
    event = InboxEventFactory()
    lead = make_lead(
        email="ada@acme.example", company="Acme", utm_campaign="spring", deal={"amount": "5"}
    )
    first = capture_lead(session, source_id=event.source_id, event_id=event.id, lead=lead)
    models = (m.Customer, m.Contact, m.Activity, m.Opportunity, m.MarketingCampaign)
    counts = {model: count(session, model) for model in models}
    again = capture_lead(session, source_id=event.source_id, event_id=event.id, lead=lead)
    assert {model: count(session, model) for model in models} == counts
    assert again.replayed
    assert again.entities == first.entities
    assert session.get_one(m.Activity, first.activity_id).event_id == event.id


def test_contact_for_address_finds_or_creates_the_contact(session: Session) -> None:
    created = contact_for_address(session, email=" Ada@Acme.example ", name="Lovelace, Ada")
    assert created.created_contact
    assert (created.contact.first_name, created.contact.last_name) == ("Ada", "Lovelace")
    found = contact_for_address(session, email="ada@acme.example")
    assert found.contact.id == created.contact.id
    assert found.matched_by == "email"
