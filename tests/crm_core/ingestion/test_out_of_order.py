"""Out-of-order deliveries never roll state back: orders, cases and deals, each sent as a
shuffled sequence of updates in our standard format, end as the newest update left them, and
a replay of an old event afterwards changes nothing."""

from __future__ import annotations

import datetime as dt
import json
import random
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from crm_core import models as m
from crm_core.config import get_settings
from crm_core.ingestion import processing, single_event
from crm_core.ingestion.policy import IngestPolicy
from tests.factories import InboxEventFactory, SourceFactory

T0 = dt.datetime(2026, 11, 30, 9, 0, tzinfo=dt.UTC)


def at(minutes: int) -> str:
    return (T0 + dt.timedelta(minutes=minutes)).isoformat()


def order(step: int, status: str) -> dict[str, Any]:
    return {
        "order_number": "A-100",
        "email": "buyer@example.com",
        "currency": "EUR",
        "lines": [{"sku": "TEA-1", "quantity": step + 1, "unit_price": "4.50"}],
        "status": status,
        "updated_at": at(step),
    }


def ticket(step: int, status: str) -> dict[str, Any]:
    return {
        "external_id": "T-7",
        "subject": f"Broken kettle, take {step}",
        "status": status,
        "priority": ["low", "normal", "high", "urgent"][step],
        "requester": {"email": "owner@example.com"},
        "opened_at": at(0),
        "updated_at": at(step),
    }


def deal(step: int, stage: str) -> dict[str, Any]:
    return {
        "external_id": "D-3",
        "email": "cfo@example.com",
        "name": "Tea for the office",
        "amount": str(100 * (step + 1)),
        "currency": "EUR",
        "stage": stage,
        "updated_at": at(step),
    }


def order_state(session: Session, source_id: int) -> tuple[Any, ...]:
    record = session.scalars(select(m.Order).where(m.Order.source_id == source_id)).one()
    return (record.status, record.total, len(record.lines))


def case_state(session: Session, source_id: int) -> tuple[Any, ...]:
    case = session.scalars(select(m.SupportCase).where(m.SupportCase.source_id == source_id)).one()
    return (case.status, case.priority, case.subject, case.first_response_due_at)


def deal_state(session: Session, source_id: int) -> tuple[Any, ...]:
    deal = session.scalars(select(m.Opportunity).where(m.Opportunity.source_id == source_id)).one()
    return (deal.stage, deal.amount)


State = Callable[[Session, int], tuple[Any, ...]]
KINDS: dict[str, tuple[Callable[[int, str], dict[str, Any]], list[str], State, str]] = {
    "orders": (order, ["placed", "paid", "fulfilled", "refunded"], order_state, "order_id"),
    "tickets": (ticket, ["new", "open", "pending", "solved"], case_state, "support_case_id"),
    "deals": (deal, ["new", "qualified", "proposal", "lost"], deal_state, "opportunity_id"),
}


def run(session: Session, event: m.InboxEvent) -> None:
    assert processing.claim_event(session, event_id=event.id)
    processing.complete_event(
        session,
        event_id=event.id,
        entities=single_event.run_event(
            session, event_id=event.id, policy=IngestPolicy.from_settings(get_settings())
        ),
    )
    session.expire_all()  # the event's status was changed by a statement, not by the ORM


def stale_events(session: Session) -> list[int | None]:
    query = select(m.Activity.event_id).where(m.Activity.type == m.ActivityType.STALE_UPDATE)
    return sorted(session.scalars(query).all(), key=lambda event_id: event_id or 0)


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("kind", list(KINDS))
def test_a_shuffled_sequence_ends_as_the_newest_update(
    session: Session, kind: str, seed: int
) -> None:
    make, states, state, link = KINDS[kind]
    documents = [make(step, value) for step, value in enumerate(states)]
    arrival = list(range(len(documents)))
    random.Random(seed).shuffle(arrival)
    if arrival[-1] == len(documents) - 1:  # the newest must not simply come last
        arrival.reverse()
    source = SourceFactory()
    events = {}
    for step in arrival:
        body = json.dumps(documents[step]).encode()
        events[step] = InboxEventFactory(source=source, kind=kind, body=body)
        run(session, events[step])

    # The end state is the newest update's, as if it had been the only one.
    alone = SourceFactory()
    body = json.dumps(documents[-1]).encode()
    run(session, InboxEventFactory(source=alone, kind=kind, body=body))
    assert state(session, source.id) == state(session, alone.id)
    # Each update that came after a newer one is one stale_update on the record's timeline.
    late = [step for i, step in enumerate(arrival) if any(seen > step for seen in arrival[:i])]
    assert late
    assert stale_events(session) == sorted(events[step].id for step in late)
    stale = session.scalars(select(m.Activity).where(m.Activity.type == "stale_update")).all()
    assert all(getattr(activity, link) is not None for activity in stale)

    # An operator replays the oldest event: nothing changes, and no event is noted twice.
    before = state(session, source.id)
    processing.replay_event(session, event_id=events[0].id)
    run(session, events[0])
    assert state(session, source.id) == before
    assert stale_events(session) == sorted({*(events[step].id for step in late), events[0].id})
