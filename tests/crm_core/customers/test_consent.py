"""The consent rule: the latest statement by time wins, and ``unknown`` replaces no answer."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy.orm import Session

from crm_core import models as m
from crm_core.customers.consent import ConsentStatement, ConsentStatus, apply_consent
from tests.factories import ContactFactory, SourceFactory

MONDAY = dt.datetime(2026, 11, 30, 9, tzinfo=dt.UTC)
TUESDAY = MONDAY + dt.timedelta(days=1)
GRANTED, DENIED, UNKNOWN = ConsentStatus.GRANTED, ConsentStatus.DENIED, ConsentStatus.UNKNOWN


def stated(contact: m.Contact) -> tuple[str | None, dt.datetime | None]:
    at = contact.marketing_consent_at
    return contact.marketing_consent, at.astimezone(dt.UTC) if at else None


@pytest.fixture
def contact(session: Session) -> m.Contact:
    contact = ContactFactory()
    session.flush()
    return contact


def test_a_first_statement_is_recorded_with_its_source_and_method(
    session: Session, contact: m.Contact
) -> None:
    source = SourceFactory()
    session.flush()
    changes = apply_consent(
        contact, ConsentStatement(GRANTED, MONDAY, "form_checkbox"), source_id=source.id
    )
    session.flush()
    assert stated(contact) == ("granted", MONDAY)
    assert (contact.marketing_consent_source_id, contact.marketing_consent_method) == (
        source.id,
        "form_checkbox",
    )
    assert changes["marketing_consent"] == {"from": None, "to": "granted"}
    assert changes["marketing_consent_at"] == {"from": None, "to": MONDAY.isoformat()}


def test_a_newer_statement_wins_and_an_older_one_changes_nothing(contact: m.Contact) -> None:
    apply_consent(contact, ConsentStatement(GRANTED, MONDAY), source_id=None)
    assert apply_consent(contact, ConsentStatement(DENIED, TUESDAY), source_id=None)
    assert stated(contact) == ("denied", TUESDAY)
    assert apply_consent(contact, ConsentStatement(GRANTED, MONDAY), source_id=None) == {}
    assert stated(contact) == ("denied", TUESDAY)


def test_the_same_statement_again_changes_nothing(contact: m.Contact) -> None:
    apply_consent(contact, ConsentStatement(GRANTED, MONDAY), source_id=None)
    assert apply_consent(contact, ConsentStatement(GRANTED, MONDAY), source_id=None) == {}


def test_unknown_fills_an_empty_consent_but_never_replaces_an_answer(contact: m.Contact) -> None:
    apply_consent(contact, ConsentStatement(UNKNOWN, MONDAY), source_id=None)
    assert stated(contact) == ("unknown", MONDAY)
    apply_consent(contact, ConsentStatement(GRANTED, TUESDAY), source_id=None)
    later = TUESDAY + dt.timedelta(days=1)
    assert apply_consent(contact, ConsentStatement(UNKNOWN, later), source_id=None) == {}
    assert stated(contact) == ("granted", TUESDAY)


def test_a_consent_stored_without_a_time_gives_way_to_any_dated_one(contact: m.Contact) -> None:
    contact.marketing_consent = "granted"
    apply_consent(contact, ConsentStatement(DENIED, MONDAY), source_id=None)
    assert stated(contact) == ("denied", MONDAY)


def test_a_naive_stored_time_is_compared_as_utc(contact: m.Contact) -> None:
    contact.marketing_consent, contact.marketing_consent_at = (
        "granted",
        TUESDAY.replace(tzinfo=None),
    )
    assert apply_consent(contact, ConsentStatement(DENIED, MONDAY), source_id=None) == {}


def test_a_statement_without_time_is_stamped_with_the_arrival() -> None:
    statement = ConsentStatement(GRANTED).stamped(MONDAY)
    assert statement.stated_at == MONDAY
    assert ConsentStatement(GRANTED, TUESDAY).stamped(MONDAY).stated_at == TUESDAY
