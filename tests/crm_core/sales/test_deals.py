"""Deals: one opportunity per (source, external id), a stage Activity per change, one agreement."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from crm_core import models as m
from crm_core.ingestion.commands import deal_command
from crm_core.payloads.schemas import DealPayload
from crm_core.sales.commands import DealCommand
from crm_core.sales.deals import record_deal
from tests.factories import ContactFactory, SourceFactory


def deal(stage: str, **overrides: object) -> DealCommand:
    data: dict[str, object] = {
        "external_id": "D-1",
        "email": "buyer@example.com",
        "name": "Annual licence",
        "amount": "12000.00",
        "currency": "usd",
        "stage": stage,
        "close_date": "2026-12-31",
    }
    data.update(overrides)
    return deal_command(DealPayload.model_validate(data))


def stage_changes(session: Session) -> list[dict]:
    query = select(m.Activity.details).where(m.Activity.type == "deal_stage_changed")
    return list(session.scalars(query.order_by(m.Activity.id)))


def test_a_deal_moves_through_its_stages_recording_each_change(session: Session) -> None:
    source, buyer = SourceFactory(), ContactFactory()
    for stage in ("new", "qualified", "qualified", "proposal"):
        record_deal(session, source_id=source.id, event_id=None, buyer=buyer, deal=deal(stage))
    opportunity = session.scalars(select(m.Opportunity)).one()
    assert (opportunity.stage, opportunity.amount, opportunity.currency) == (
        "proposal",
        Decimal("12000.00"),
        "USD",
    )
    assert stage_changes(session) == [
        {"from": None, "to": "new"},
        {"from": "new", "to": "qualified"},
        {"from": "qualified", "to": "proposal"},
    ]
    assert session.scalar(select(func.count()).select_from(m.Agreement)) == 0


def test_winning_signs_exactly_one_agreement_and_makes_a_customer(session: Session) -> None:
    source, buyer = SourceFactory(), ContactFactory()
    record_deal(session, source_id=source.id, event_id=None, buyer=buyer, deal=deal("proposal"))
    for _ in range(3):
        touched = record_deal(
            session, source_id=source.id, event_id=None, buyer=buyer, deal=deal("won")
        )
    agreement = session.scalars(select(m.Agreement)).one()
    opportunity = session.scalars(select(m.Opportunity)).one()
    assert agreement.origin_opportunity_id == opportunity.id
    assert agreement.customer_id == buyer.customer_id
    assert agreement.number.startswith("AG-")
    assert agreement.number.endswith(f"{opportunity.id:06d}")
    assert str(agreement.effective_on) == "2026-12-31"
    assert [o.id for o in agreement.opportunities] == [opportunity.id]
    assert opportunity.closed_at is not None
    assert buyer.customer.lifecycle_stage == "customer"
    assert ("agreement", agreement.id) in touched
    signed = select(func.count()).where(m.Activity.type == "agreement_signed")
    assert session.scalar(signed) == 1


def test_a_deal_won_at_once_records_creation_and_the_agreement(session: Session) -> None:
    source, buyer = SourceFactory(), ContactFactory()
    record_deal(session, source_id=source.id, event_id=None, buyer=buyer, deal=deal("won"))
    assert stage_changes(session) == [{"from": None, "to": "won"}]
    assert session.scalar(select(func.count()).select_from(m.Agreement)) == 1


def test_lost_deals_close_without_an_agreement(session: Session) -> None:
    source, buyer = SourceFactory(), ContactFactory()
    record_deal(session, source_id=source.id, event_id=None, buyer=buyer, deal=deal("lost"))
    opportunity = session.scalars(select(m.Opportunity)).one()
    assert opportunity.closed_at is not None
    assert session.scalar(select(func.count()).select_from(m.Agreement)) == 0
    assert buyer.customer.lifecycle_stage == "lead"
