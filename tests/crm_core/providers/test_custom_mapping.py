"""Custom senders' documents become CRM data as their mapping files say; what the kind
refuses is named by the JSON Pointer it was read from, and a fixed mapping reads it again."""

from __future__ import annotations

import copy
from decimal import Decimal
from typing import Any

from sqlalchemy.orm import Session

from crm_core import models as m
from crm_core.config import get_settings
from crm_core.errors import FieldError
from crm_core.ingestion import processing, services, single_event
from crm_core.ingestion.policy import IngestPolicy
from crm_core.providers.custom_mapping import PointerMapped
from crm_core.providers.custom_spec import load_mapping
from tests.crm_core.providers.mapped_events import fixture, linked, run_provider_event
from tests.factories import SourceFactory
from tests.provider_requests import EXAMPLES

ORDER = fixture("custom", "order_completed.json")
LEAD = fixture("custom", "lead_submitted.json")


def _mapping(example: str) -> dict[str, Any]:
    return load_mapping((EXAMPLES / example).read_bytes()).model_dump(mode="json")


def _run(session: Session, example: str, document: dict[str, Any], **source: Any) -> m.InboxEvent:
    mapping = _mapping(example)
    kind = mapping["kind"]
    return run_provider_event(
        session,
        provider="custom",
        kind=kind,
        topic="order.completed" if kind == "orders" else None,  # type: ignore[arg-type]
        document=document,
        source=SourceFactory(provider="custom", mapping=mapping, **source),
    )


def test_a_github_style_order_becomes_an_order_with_its_lines(session: Session) -> None:
    event = _run(session, "github-style.toml", ORDER)
    assert event.status == "processed", event.errors
    order = session.get(m.Order, linked(event, "order")[0])
    assert (order.order_number, order.currency, order.total, order.status) == (
        "SHOP-2001",
        "EUR",
        Decimal("42.50"),
        "paid",  # the file's constant
    )
    assert [(line.quantity, line.unit_price) for line in order.lines] == [
        (2, Decimal("12.50")),
        (1, Decimal("17.50")),
    ]
    contact = session.get(m.Contact, linked(event, "contact")[0])
    assert contact.email_normalized == "grace.hopper@example.org"


def test_a_lead_form_submission_becomes_a_lead_with_its_utm_codes(session: Session) -> None:
    event = _run(session, "lead-form.toml", LEAD)
    assert event.status == "processed", event.errors
    contact = session.get(m.Contact, linked(event, "contact")[0])
    assert (contact.email_normalized, contact.first_name, contact.last_name) == (
        "margaret.hamilton@example.com",
        "Margaret",
        "Hamilton",
    )
    assert contact.customer.name == "Apollo Tea Rooms"
    activity = session.get(m.Activity, linked(event, "activity")[0])
    assert activity.details["utm"] == {
        "source": "landing-page",  # a constant: the sender sends none
        "medium": "cpc",
        "campaign": "wholesale-winter",
    }
    assert activity.details["external_id"] == "sub_01JE2M6S4V9ZQK"


def test_numbers_read_into_text_fields_are_their_decimal_text(session: Session) -> None:
    document = copy.deepcopy(ORDER)
    document["order"]["number"] = 2001
    document["order"]["items"][0]["sku"] = 4711
    event = _run(session, "github-style.toml", document)
    assert event.status == "processed", event.errors
    order = session.get(m.Order, linked(event, "order")[0])
    assert order.order_number == "2001"
    assert sorted(line.product.sku for line in order.lines) == ["4711", "POT-CAST-08"]


def test_what_the_kind_refuses_is_named_by_the_sender_s_json_pointer(session: Session) -> None:
    document = copy.deepcopy(ORDER)
    document["order"]["items"][1]["price"] = "seventeen"
    del document["order"]["number"]
    document["order"]["customer"]["email"] = "not an address"
    event = _run(session, "github-style.toml", document)
    assert event.status == "invalid"
    assert sorted(error["field"] for error in event.errors) == [
        "/order/items/1/price",
        "/order/number",
    ]
    address = copy.deepcopy(ORDER)
    address["order"]["customer"]["email"] = "not an address"
    event = _run(session, "github-style.toml", address, name="shop-2")
    assert event.status == "invalid"
    assert [error["field"] for error in event.errors] == ["/order/customer/email"]


def test_a_bad_constant_is_named_as_the_file_s_key(session: Session) -> None:
    mapping = _mapping("github-style.toml")
    mapping["constants"]["status"] = "shipped-ish"
    event = run_provider_event(
        session,
        provider="custom",
        kind="orders",
        topic="order.completed",
        document=ORDER,
        source=SourceFactory(provider="custom", mapping=mapping),
    )
    assert [error["field"] for error in event.errors] == ["constants.status"]


def test_a_pointer_that_finds_a_value_wins_over_the_constant(session: Session) -> None:
    document = copy.deepcopy(LEAD)
    document["submission"]["tracking"]["utm_source"] = "newsletter"
    mapping = _mapping("lead-form.toml")
    mapping["fields"]["utm_source"] = "/submission/tracking/utm_source"
    event = run_provider_event(
        session,
        provider="custom",
        kind="leads",
        topic=None,  # type: ignore[arg-type]
        document=document,
        source=SourceFactory(provider="custom", mapping=mapping),
    )
    activity = session.get(m.Activity, linked(event, "activity")[0])
    assert activity.details["utm"]["source"] == "newsletter"


def test_a_fixed_mapping_reads_an_invalid_event_when_it_is_replayed(session: Session) -> None:
    mapping = _mapping("lead-form.toml")
    mapping["fields"]["email"] = "/submission/answers/e-mail"  # the sender's key is "email"
    mapping["fields"]["phone"] = "/submission/answers/telephone"
    source = SourceFactory(provider="custom", mapping=mapping, name="landing")
    event = run_provider_event(
        session, provider="custom", kind="leads", topic=None,  # type: ignore[arg-type]
        document=LEAD, source=source,
    )  # fmt: skip
    assert event.status == "invalid"
    assert event.errors[0]["message"] == "Value error, a lead needs at least one of email or phone"
    services.set_source_mapping(session, name="landing", mapping=_mapping("lead-form.toml"))
    processing.replay_event(session, event_id=event.id)
    assert processing.claim_event(session, event_id=event.id)
    single_event.run_event(
        session, event_id=event.id, policy=IngestPolicy.from_settings(get_settings())
    )
    session.refresh(event)
    assert event.status == "processed"
    assert linked(event, "contact")


def test_errors_below_a_pointer_extend_the_pointer() -> None:
    mapped = PointerMapped({}, {("attributes",): ("/extra/a~1b",), ("lines",): ("/items",)})
    errors = [FieldError(("attributes", "x/y"), "bad"), FieldError(("lines", 3, "sku"), "bad")]
    assert [e.field for e in mapped.translate(errors)] == ["/extra/a~1b/x~1y", "/items/3/sku"]


HELP_DESK = """
kind = "tickets"
[signature]
header = "X-Signature"
[delivery_id]
pointer = "/event_id"
[fields]
external_id = "/ticket/key"
subject = "/ticket/title"
"requester.email" = "/ticket/reporter/mail"
"requester.name" = "/ticket/reporter/display"
[fields.comments]
each = "/ticket/notes"
body = "/text"
author_email = "/by"
[constants]
priority = "high"
"""


def test_a_ticket_takes_nested_fields_and_its_comments(session: Session) -> None:
    document = {
        "event_id": "e-1",
        "ticket": {
            "key": "HD-7",
            "title": "The kettle whistles in F sharp",
            "reporter": {"mail": "ann@example.com", "display": "Ann Example"},
            "notes": [{"text": "It used to be F.", "by": "ann@example.com"}, {"by": "x@y.z"}],
        },
    }
    mapping = load_mapping(HELP_DESK).model_dump(mode="json")
    event = run_provider_event(
        session, provider="custom", kind="tickets", topic=None,  # type: ignore[arg-type]
        document=document, source=SourceFactory(provider="custom", mapping=mapping),
    )  # fmt: skip
    # The second note has no text: named by where it would have been.
    assert [error["field"] for error in event.errors] == ["/ticket/notes/1/text"]
    document["ticket"]["notes"].pop()
    event = run_provider_event(
        session, provider="custom", kind="tickets", topic=None,  # type: ignore[arg-type]
        document=document, source=SourceFactory(provider="custom", mapping=mapping, name="hd2"),
    )  # fmt: skip
    assert event.status == "processed", event.errors
    case = session.get(m.SupportCase, linked(event, "support_case")[0])
    assert (case.subject, case.priority) == ("The kettle whistles in F sharp", "high")
    contact = session.get(m.Contact, linked(event, "contact")[0])
    assert contact.email_normalized == "ann@example.com"


def test_a_deal_from_a_custom_sales_tool(session: Session) -> None:
    text = HELP_DESK.replace('"tickets"', '"deals"').split("[fields]")[0] + (
        '[fields]\nexternal_id = "/deal/id"\nemail = "/deal/contact"\nname = "/deal/title"\n'
        'amount = "/deal/value"\n[constants]\ncurrency = "EUR"\nstage = "qualified"\n'
    )
    deal = {"id": 991, "contact": "bo@example.com", "title": "Tea for the office", "value": 1500}
    document = {"event_id": "e-2", "deal": deal}  # the id is a number: taken as its text
    event = run_provider_event(
        session, provider="custom", kind="deals", topic=None,  # type: ignore[arg-type]
        document=document,
        source=SourceFactory(provider="custom", mapping=load_mapping(text).model_dump(mode="json")),
    )  # fmt: skip
    assert event.status == "processed", event.errors
    deal = session.get(m.Opportunity, linked(event, "opportunity")[0])
    assert (deal.name, deal.stage, deal.amount) == ("Tea for the office", "qualified", 1500)
