"""The standard ``leads`` kind's ``consent`` field, through the worker."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from crm_core import models as m
from crm_core.config import get_settings
from crm_core.errors import InvalidInput
from crm_core.ingestion import processing, single_event
from crm_core.ingestion.policy import IngestPolicy
from crm_core.ingestion.validation import validate_payload
from tests.factories import InboxEventFactory

RECEIVED = dt.datetime(2026, 12, 3, 8, tzinfo=dt.UTC)


def run_lead(session: Session, document: dict[str, object]) -> m.InboxEvent:
    event = InboxEventFactory(body=json.dumps(document).encode(), received_at=RECEIVED)
    assert processing.claim_event(session, event_id=event.id)
    single_event.run_event(
        session, event_id=event.id, policy=IngestPolicy.from_settings(get_settings())
    )
    return event


def consent(session: Session) -> tuple[str | None, dt.datetime | None, str | None]:
    contact = session.scalars(select(m.Contact)).one()
    at = contact.marketing_consent_at
    return (
        contact.marketing_consent,
        at.astimezone(dt.UTC) if at else None,
        contact.marketing_consent_method,
    )


def test_a_consent_without_time_is_dated_by_the_event_s_arrival(session: Session) -> None:
    event = run_lead(session, {"email": "a@example.com", "consent": {"status": "granted"}})
    assert consent(session) == ("granted", RECEIVED, None)
    contact = session.scalars(select(m.Contact)).one()
    assert contact.marketing_consent_source_id == event.source_id


def test_a_dated_consent_keeps_its_time_and_method(session: Session) -> None:
    run_lead(
        session,
        {
            "email": "a@example.com",
            "consent": {"status": "denied", "at": "2026-11-01T10:00:00", "method": "phone call"},
        },
    )
    assert consent(session) == ("denied", dt.datetime(2026, 11, 1, 10, tzinfo=dt.UTC), "phone call")


def test_a_lead_without_consent_states_none(session: Session) -> None:
    run_lead(session, {"email": "a@example.com"})
    assert consent(session) == (None, None, None)


def test_a_bad_consent_is_refused_at_intake_by_name() -> None:
    body = json.dumps({"email": "a@example.com", "consent": {"status": "maybe"}}).encode()
    outcome = validate_payload("leads", body, "application/json")
    assert [e.field for e in outcome.errors] == ["consent.status"]


def test_a_bad_consent_is_refused_by_the_worker_too(session: Session) -> None:
    with pytest.raises(InvalidInput) as caught:
        run_lead(session, {"email": "a@example.com", "consent": True})
    assert [e.field for e in caught.value.errors] == ["consent"]
