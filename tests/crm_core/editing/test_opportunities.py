"""Deals written by people: stage changes on the timeline, one agreement per won deal."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from crm_core import merges
from crm_core import models as m
from crm_core.editing import opportunities
from crm_core.editing.records import RecordConflict, RecordNotFound
from crm_core.errors import InvalidInput
from crm_core.people.models import AuditEntry
from crm_core.people.permissions import Actor, PermissionDenied
from tests.factories import ContactFactory, CustomerFactory

AGENT = Actor.for_user(user_id=1, email="agent@example.com", role="agent")
VIEWER = Actor.for_user(user_id=2, email="viewer@example.com", role="viewer")


def _stages(session: Session, opportunity_id: int) -> list[dict]:
    return [
        a.details
        for a in session.scalars(
            select(m.Activity)
            .where(
                m.Activity.opportunity_id == opportunity_id, m.Activity.type == "deal_stage_changed"
            )
            .order_by(m.Activity.id)
        )
    ]


def test_a_deal_moves_to_won_and_signs_exactly_one_agreement(session: Session) -> None:
    contact = ContactFactory(is_primary=True)
    deal = opportunities.create_opportunity(
        session,
        actor=AGENT,
        document={
            "customer_id": contact.customer_id,
            "contact_id": contact.id,
            "name": "40 seats",
            "amount": "12000.50",
            "currency": "eur",
            "owner": "ann@example.com",
        },
    )
    assert (deal.stage, deal.amount, deal.currency) == ("new", Decimal("12000.50"), "EUR")
    for stage in ("proposal", "won", "proposal", "won"):
        opportunities.update_opportunity(
            session, actor=AGENT, opportunity_id=deal.id, document={"stage": stage}
        )
    agreements = session.scalars(select(m.Agreement)).all()
    assert [a.origin_opportunity_id for a in agreements] == [deal.id]
    assert agreements[0].amount == Decimal("12000.50")
    assert session.get_one(m.Customer, contact.customer_id).lifecycle_stage == "customer"
    assert [d["to"] for d in _stages(session, deal.id)] == [
        "new",
        "proposal",
        "won",
        "proposal",
        "won",
    ]
    updates = session.scalars(
        select(AuditEntry)
        .where(AuditEntry.entity == "opportunity", AuditEntry.action == "update")
        .order_by(AuditEntry.id)
    ).all()
    assert updates[0].changes["stage"] == {"before": "new", "after": "proposal"}


def test_a_deal_created_won_is_signed_at_once(session: Session) -> None:
    customer = CustomerFactory()
    deal = opportunities.create_opportunity(
        session,
        actor=AGENT,
        document={"customer_id": customer.id, "name": "Pilot", "stage": "won"},
    )
    assert deal.closed_at is not None
    assert len(deal.agreements) == 1


def test_bad_deals_are_refused_naming_the_field(session: Session) -> None:
    customer, stranger = CustomerFactory(), ContactFactory()
    with pytest.raises(InvalidInput) as bad:
        opportunities.create_opportunity(
            session,
            actor=AGENT,
            document={"customer_id": customer.id, "name": "", "stage": "maybe", "amount": -1},
        )
    assert {e.loc[0] for e in bad.value.errors} == {"name", "stage", "amount"}
    with pytest.raises(InvalidInput) as foreign:
        opportunities.create_opportunity(
            session,
            actor=AGENT,
            document={"customer_id": customer.id, "name": "x", "contact_id": stranger.id},
        )
    assert foreign.value.errors[0].loc == ("contact_id",)
    with pytest.raises(InvalidInput) as missing:
        opportunities.create_opportunity(
            session, actor=AGENT, document={"customer_id": 424242, "name": "x"}
        )
    assert missing.value.errors[0].loc == ("customer_id",)
    other = CustomerFactory()
    merges.merge_customers(
        session, actor=AGENT, customer_id=customer.id, document={"into": other.id}
    )
    with pytest.raises(InvalidInput, match="merged"):
        opportunities.create_opportunity(
            session, actor=AGENT, document={"customer_id": customer.id, "name": "x"}
        )
    with pytest.raises(InvalidInput):
        opportunities.update_opportunity(
            session, actor=AGENT, opportunity_id=1, document={"stage": None}
        )
    with pytest.raises(RecordNotFound):
        opportunities.update_opportunity(
            session, actor=AGENT, opportunity_id=424242, document={"stage": "won"}
        )
    with pytest.raises(PermissionDenied):
        opportunities.create_opportunity(
            session, actor=VIEWER, document={"customer_id": other.id, "name": "x"}
        )


def test_an_agreement_is_terminated_once_and_not_before_it_began(session: Session) -> None:
    customer = CustomerFactory()
    deal = opportunities.create_opportunity(
        session,
        actor=AGENT,
        document={
            "customer_id": customer.id,
            "name": "Pilot",
            "stage": "won",
            "expected_close_date": "2026-06-01",
        },
    )
    [agreement] = deal.agreements
    with pytest.raises(InvalidInput) as early:
        opportunities.terminate_agreement(
            session,
            actor=AGENT,
            agreement_id=agreement.id,
            document={"terminated_on": "2026-05-31"},
        )
    assert early.value.errors[0].loc == ("terminated_on",)
    ended = opportunities.terminate_agreement(
        session, actor=AGENT, agreement_id=agreement.id, document={"terminated_on": "2026-12-31"}
    )
    assert (ended.status, ended.terminates_on) == ("terminated", dt.date(2026, 12, 31))
    with pytest.raises(RecordConflict):
        opportunities.terminate_agreement(
            session,
            actor=AGENT,
            agreement_id=agreement.id,
            document={"terminated_on": "2027-01-01"},
        )
    with pytest.raises(InvalidInput):
        opportunities.terminate_agreement(
            session, actor=AGENT, agreement_id=agreement.id, document={"terminated_on": "soon"}
        )
