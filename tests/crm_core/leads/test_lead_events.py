"""A stored leads event through its entry of the handler table: parsed once, then captured."""

from __future__ import annotations

import json

import pytest
from sqlalchemy.orm import Session

from crm_core import models as m
from crm_core.config import Settings
from crm_core.errors import InvalidInput
from crm_core.ingestion.handlers import HANDLERS
from crm_core.ingestion.policy import IngestPolicy
from tests.factories import InboxEventFactory


def capture_lead_event(
    session: Session, *, event: m.InboxEvent, settings: Settings
) -> list[tuple[str, int]]:
    """The leads entry run on ``event`` under the policy of these settings."""
    return HANDLERS["leads"].run(session, event, IngestPolicy.from_settings(settings))


def lead_event(body: object) -> m.InboxEvent:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return InboxEventFactory(body=raw)


def test_a_lead_event_becomes_entities(session: Session) -> None:
    event = lead_event(
        {"email": "ada@acme.example", "phone": "030 901820", "country": "DE", "external_id": "f-1"}
    )
    entities = capture_lead_event(session, event=event, settings=Settings(default_region="US"))
    kinds = [kind for kind, _ in entities]
    assert kinds == ["customer", "contact", "activity"]
    contact = session.get_one(m.Contact, dict(entities)["contact"])
    assert contact.phone == "+4930901820"
    assert contact.country == "DE"
    activity = session.get_one(m.Activity, dict(entities)["activity"])
    assert activity.event_id == event.id
    # Replaying the event touches the same entities and writes nothing new.
    assert capture_lead_event(session, event=event, settings=Settings()) == entities


def test_the_configured_default_region_reads_national_numbers(session: Session) -> None:
    event = lead_event({"email": "ada@acme.example", "phone": "020 7946 0958"})
    entities = capture_lead_event(session, event=event, settings=Settings(default_region="GB"))
    assert session.get_one(m.Contact, dict(entities)["contact"]).phone == "+442079460958"


def test_configured_free_mail_domains_make_person_customers(session: Session) -> None:
    event = lead_event({"email": "ada@staff-mail.example"})
    settings = Settings(extra_freemail_domains=" Staff-Mail.example, other.example ,")
    assert settings.extra_freemail_domain_list() == ["staff-mail.example", "other.example"]
    entities = capture_lead_event(session, event=event, settings=settings)
    customer = session.get_one(m.Customer, dict(entities)["customer"])
    assert (customer.kind, customer.domain) == ("person", None)


@pytest.mark.parametrize(
    ("body", "locs"),
    [
        ({"email": "not-an-address"}, [("email",)]),
        ({"full_name": "No Way To Reach"}, [("body",)]),
        ({"email": "a@example.com", "deal": {"amount": "-1"}}, [("deal", "amount")]),
        (b"{not json", [("body",)]),
        ([1, 2], [("body",)]),
    ],
)
def test_a_bad_lead_event_lists_each_bad_field(
    session: Session, body: object, locs: list[tuple[object, ...]]
) -> None:
    with pytest.raises(InvalidInput) as caught:
        capture_lead_event(session, event=lead_event(body), settings=Settings())
    assert [error.loc for error in caught.value.errors] == locs
    assert all(error.msg for error in caught.value.errors)
