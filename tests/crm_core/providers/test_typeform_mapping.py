"""Typeform responses become leads: answers by the source's own refs, then by question type
and ref, UTM codes hidden."""

from __future__ import annotations

import copy

import pytest
from sqlalchemy.orm import Session

from crm_core import models as m
from crm_core.errors import InvalidInput
from crm_core.providers.typeform_mapping import mapping_from_pairs
from tests.crm_core.providers.mapped_events import fixture, linked, run_provider_event
from tests.factories import SourceFactory

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


def run_with_refs(session: Session, document: dict, *pairs: str) -> m.InboxEvent:
    source = SourceFactory(provider="typeform", mapping=mapping_from_pairs(list(pairs)))
    return run_provider_event(
        session,
        provider="typeform",
        kind="leads",
        topic="form_response",
        document=document,
        source=source,
    )


def test_the_source_s_own_refs_fill_lead_fields_first(session: Session) -> None:
    document = copy.deepcopy(RESPONSE)
    answers = document["form_response"]["answers"]
    answers[3]["field"]["ref"] = "shop_name"  # no longer named after a lead field
    answers.append(
        {"type": "text", "text": "Head barista", "field": {"id": "x1", "type": "short_text",
                                                           "ref": "role"}}
    )  # fmt: skip
    answers.append(
        {"type": "email", "email": "orders@orbit.example", "field": {"id": "x2", "type": "email",
                                                                     "ref": "work_email"}}
    )  # fmt: skip
    event = run_with_refs(
        session, document, "company=shop_name", "job_title=role", "email=work_email"
    )
    assert event.status == "processed", event.errors
    contact = session.get(m.Contact, linked(event, "contact")[0])
    # The mapped e-mail question wins over the first question typed email.
    assert (contact.email_normalized, contact.job_title) == ("orders@orbit.example", "Head barista")
    assert contact.customer.name == "Orbit Coffee Bar"


def test_a_ref_may_name_a_hidden_field_for_a_utm_code(session: Session) -> None:
    document = copy.deepcopy(RESPONSE)
    document["form_response"]["hidden"] = {"campaign": "spring-tea", "utm_source": "linkedin"}
    event = run_with_refs(session, document, "utm_campaign=campaign")
    assert event.status == "processed", event.errors
    activity = session.get(m.Activity, linked(event, "activity")[0])
    assert activity.details["utm"] == {"source": "linkedin", "campaign": "spring-tea"}


def test_a_bad_answer_under_a_mapped_ref_names_that_answer(session: Session) -> None:
    document = copy.deepcopy(RESPONSE)
    document["form_response"]["answers"][3]["text"] = "x" * 300
    document["form_response"]["answers"][3]["field"]["ref"] = "shop_name"
    event = run_with_refs(session, document, "company=shop_name")
    assert [error["field"] for error in event.errors] == ["form_response.answers.3.text"]


def test_refs_are_checked_before_they_are_stored() -> None:
    assert mapping_from_pairs([]) is None
    assert mapping_from_pairs(["company = shop_name"]) == {"answers": {"company": "shop_name"}}
    for pairs, named in (
        (["compny=shop"], "compny: not a lead field"),
        (["company"], "'company': give each lead field once"),
        (["company=a", "company=b"], "'company=b': give each lead field once"),
        (["company="], "String should have at least 1 character"),
        (["company=two words"], "String should match pattern"),
    ):
        with pytest.raises(InvalidInput) as caught:
            mapping_from_pairs(pairs)
        [error] = caught.value.errors
        assert error.field == "map"
        assert named in error.msg, error.msg
