"""Typeform responses become leads: answers by question type and ref, UTM codes hidden."""

from __future__ import annotations

import copy

from sqlalchemy.orm import Session

from crm_core import models as m
from tests.crm_core.providers.mapped_events import fixture, linked, run_provider_event

RESPONSE = fixture("typeform", "form_response.json")


def run(session: Session, document: dict) -> m.InboxEvent:
    return run_provider_event(
        session, provider="typeform", kind="leads", topic="form_response", document=document
    )


def test_a_response_is_a_lead_with_its_answers_and_utm_codes(session: Session) -> None:
    event = run(session, RESPONSE)
    assert event.status == "processed", event.errors
    contact = session.get(m.Contact, linked(event, "contact")[0])
    assert (contact.email_normalized, contact.first_name, contact.phone) == (
        "katherine.johnson@example.net",
        "Katherine",
        "+14155550123",
    )
    assert contact.customer.name == "Orbit Coffee Bar"
    activity = session.get(m.Activity, linked(event, "activity")[0])
    assert activity.details["utm"] == {
        "source": "linkedin",
        "medium": "paid-social",
        "campaign": "winter-tea",
    }
    assert activity.details["external_id"] == "a3a12ec67a1365927098a606107fac15"


def test_the_email_and_phone_are_found_by_question_type_whatever_their_ref(
    session: Session,
) -> None:
    document = copy.deepcopy(RESPONSE)
    for answer in document["form_response"]["answers"]:
        answer["field"]["ref"] = answer["field"]["id"]
    event = run(session, document)
    assert event.status == "processed", event.errors
    contact = session.get(m.Contact, linked(event, "contact")[0])
    assert (contact.email_normalized, contact.phone, contact.first_name) == (
        "katherine.johnson@example.net",
        "+14155550123",
        None,
    )


def test_a_bad_address_names_the_typeform_answer(session: Session) -> None:
    document = copy.deepcopy(RESPONSE)
    document["form_response"]["answers"][1]["email"] = "not an address"
    event = run(session, document)
    assert event.status == "invalid"
    assert [error["field"] for error in event.errors] == ["form_response.answers.1.email"]
