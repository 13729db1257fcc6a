"""Each kind's real handler, run through the pipeline on a stored event."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from crm_core import models as m
from crm_core.config import get_settings
from crm_core.errors import InvalidInput
from crm_core.ingestion import processing, single_event
from crm_core.ingestion.policy import IngestPolicy
from tests.factories import InboxEventFactory, SourceFactory

EMAILS = Path(__file__).resolve().parents[2] / "fixtures" / "emails"


def run(session: Session, kind: str, body: dict | bytes, **fields: object) -> m.InboxEvent:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    event = InboxEventFactory(kind=kind, body=raw, **fields)
    assert processing.claim_event(session, event_id=event.id)
    single_event.run_event(
        session, event_id=event.id, policy=IngestPolicy.from_settings(get_settings())
    )
    session.refresh(event)
    return event


def linked(event: m.InboxEvent, entity_type: str) -> list[int]:
    return [e.entity_id for e in event.entities if e.entity_type == entity_type]


def count(session: Session, model: type) -> int:
    return session.scalar(select(func.count()).select_from(model))


def test_a_lead_event_makes_a_contact_and_says_so(session: Session) -> None:
    event = run(session, "leads", {"email": "Ada@Analytical.example", "full_name": "Ada Lovelace"})
    assert event.status == "processed"
    [contact_id] = linked(event, "contact")
    contact = session.get(m.Contact, contact_id)
    assert (contact.email_normalized, contact.first_name) == ("ada@analytical.example", "Ada")
    assert linked(event, "activity")


def test_an_order_event_makes_the_buyer_a_customer(session: Session) -> None:
    order = {
        "order_number": "A-1",
        "email": "buyer@shop.example",
        "currency": "EUR",
        "lines": [{"sku": "X", "quantity": 2, "unit_price": "5.00"}],
        "total": "10.00",
    }
    event = run(session, "orders", order)
    [order_id] = linked(event, "order")
    assert str(session.get(m.Order, order_id).total) == "10.00"
    [customer_id] = linked(event, "customer")
    assert session.get(m.Customer, customer_id).lifecycle_stage == "customer"
    assert len(linked(event, "product")) == 1


def test_an_order_with_a_bad_buyer_address_is_invalid(session: Session) -> None:
    order = {
        "order_number": "A-2",
        "email": "not an address",
        "currency": "EUR",
        "lines": [{"sku": "X", "quantity": 1, "unit_price": "5.00"}],
    }
    with pytest.raises(InvalidInput) as raised:
        run(session, "orders", order)
    assert [e.field for e in raised.value.errors] == ["email"]


def test_a_won_deal_event_signs_an_agreement(session: Session) -> None:
    deal = {"external_id": "D9", "email": "cfo@big.example", "name": "Big", "stage": "won"}
    event = run(session, "deals", deal)
    assert len(linked(event, "agreement")) == 1
    assert len(linked(event, "opportunity")) == 1


def test_a_ticket_event_opens_a_case_for_its_requester(session: Session) -> None:
    ticket = {
        "external_id": "T1",
        "subject": "Broken",
        "requester": {"email": "ops@client.example", "name": "Ops Team"},
        "priority": "high",
    }
    event = run(session, "tickets", ticket)
    [case_id] = linked(event, "support_case")
    case = session.get(m.SupportCase, case_id)
    assert case.contact.email_normalized == "ops@client.example"
    assert case.priority == "high"


def test_a_raw_email_event_is_threaded_and_its_decision_kept(
    session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    from crm_core.config import get_settings

    monkeypatch.setattr(get_settings(), "support_addresses", frozenset({"support@acme.test"}))
    raw = (EMAILS / "02_multipart_alternative.eml").read_bytes()
    event = run(session, "emails", raw, content_type="message/rfc822")
    assert event.outcome["decision"] == "new_case"
    assert len(linked(event, "support_case")) == 1
    again = run(session, "emails", raw, content_type="message/rfc822")
    assert again.outcome["decision"] == "duplicate"
    assert count(session, m.SupportCase) == 1
    processing.replay_event(session, event_id=event.id)
    assert processing.claim_event(session, event_id=event.id)
    single_event.run_event(
        session, event_id=event.id, policy=IngestPolicy.from_settings(get_settings())
    )
    session.refresh(event)
    assert event.outcome["decision"] == "new_case"


def test_a_json_email_event_is_an_activity_on_its_sender(session: Session) -> None:
    doc = {
        "from": "Zoe <zoe@client.example>",
        "to": ["sales@acme.test"],
        "subject": "Hello",
        "text": "Just saying hi",
        "message_id": "<json-1@client.example>",
    }
    event = run(session, "emails", doc)
    assert event.outcome["decision"] == "contact_activity"
    [activity_id] = linked(event, "activity")
    activity = session.get(m.Activity, activity_id)
    assert activity.message_id == "json-1@client.example"
    assert activity.contact.email_normalized == "zoe@client.example"


def test_a_replayed_event_creates_no_row(session: Session) -> None:
    source = SourceFactory()
    lead = {"email": "once@example.com", "deal": {"name": "Pilot", "amount": "100.00"}}
    event = run(session, "leads", lead, source=source)
    before = {model: count(session, model) for model in (m.Contact, m.Opportunity, m.Activity)}
    processing.replay_event(session, event_id=event.id)
    assert processing.claim_event(session, event_id=event.id)
    single_event.run_event(
        session, event_id=event.id, policy=IngestPolicy.from_settings(get_settings())
    )
    after = {model: count(session, model) for model in (m.Contact, m.Opportunity, m.Activity)}
    assert after == before


def test_every_kind_has_an_entry_in_the_table() -> None:
    from crm_core.ingestion.handlers import HANDLERS
    from crm_core.payloads.kinds import EventKind

    assert set(HANDLERS) == {kind.value for kind in EventKind}


@pytest.mark.parametrize(
    ("kind", "body"),
    [
        ("leads", {"email": "once@parsed.example", "company": "Once"}),
        ("deals", {"external_id": "d-1", "email": "once@parsed.example", "name": "Pilot"}),
    ],
)
def test_a_stored_body_is_parsed_once_per_processing(
    session: Session, monkeypatch: pytest.MonkeyPatch, kind: str, body: dict
) -> None:
    from crm_core.ingestion import validation
    from crm_core.payloads.schemas import LeadPayload

    parsed: list[bytes] = []
    real = validation.json_document
    real_lead = LeadPayload.model_validate_json

    def counting(raw: bytes, *, max_depth: int) -> object:
        parsed.append(raw)
        return real(raw, max_depth=max_depth)

    def counting_lead(raw: bytes, *args: object, **kwargs: object) -> LeadPayload:
        parsed.append(raw)
        return real_lead(raw, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(validation, "json_document", counting)
    monkeypatch.setattr(LeadPayload, "model_validate_json", counting_lead)
    event = run(session, kind, body)
    assert event.status == "processed"
    assert len(parsed) == 1
