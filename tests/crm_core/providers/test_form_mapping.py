"""A web form's post, as a browser sends it, through the worker's mapping into a lead."""

from __future__ import annotations

import datetime as dt
from urllib.parse import urlencode

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from crm_core import models as m
from crm_core.config import get_settings
from crm_core.errors import InvalidInput
from crm_core.ingestion import processing, single_event
from crm_core.ingestion.policy import IngestPolicy
from crm_core.ingestion.validation import payload_from_document
from crm_core.payloads.schemas import LeadPayload
from crm_core.providers import ProviderRequest, get_provider
from crm_core.providers.form import Form, origin_of
from crm_core.providers.form_body import MAX_FIELDS, read_form
from crm_core.providers.form_mapping import submission
from tests.crm_core.providers.mapped_events import linked
from tests.factories import InboxEventFactory, SourceFactory

URLENCODED = "application/x-www-form-urlencoded"
POSTED_AT = dt.datetime(2026, 12, 3, 8, 30, tzinfo=dt.UTC)


def multipart(fields: list[tuple[str, str]], *, file: bool = False) -> tuple[bytes, str]:
    boundary = "----WebKitFormBoundary7MA4YWxkTrZu0gW"
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'
        for name, value in fields
    ]
    if file:
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="cv"; filename="cv.txt"\r\n'
            "Content-Type: text/plain\r\n\r\nmy whole life\r\n"
        )
    body = ("".join(parts) + f"--{boundary}--\r\n").encode()
    return body, f"multipart/form-data; boundary={boundary}"


def run_form(
    session: Session, body: bytes, content_type: str = URLENCODED, source: m.Source | None = None
) -> m.InboxEvent:
    source = source or SourceFactory(provider="form")
    event = InboxEventFactory(
        source=source,
        topic="submission",
        body=body,
        content_type=content_type,
        received_at=POSTED_AT,
    )
    assert processing.claim_event(session, event_id=event.id)
    try:
        single_event.run_event(
            session, event_id=event.id, policy=IngestPolicy.from_settings(get_settings())
        )
    except InvalidInput as exc:
        processing.fail_event(
            session,
            event_id=event.id,
            error=str(exc),
            status=m.EventStatus.INVALID,
            errors=exc.error_dicts(),
        )
    session.refresh(event)
    return event


def test_a_posted_form_becomes_a_contact_with_its_consent(session: Session) -> None:
    body = urlencode(
        {
            "email": "Ada@Example.com",
            "first_name": "Ada",
            "company": "Engines Ltd",
            "utm_source": "newsletter",
            "consent": "yes",
            "budget": "10k",
            "_gotcha": "",
        }
    ).encode()
    event = run_form(session, body)
    assert event.status == "processed", event.errors
    contact = session.get(m.Contact, linked(event, "contact")[0])
    assert (contact.email_normalized, contact.first_name) == ("ada@example.com", "Ada")
    assert contact.marketing_consent == "granted"
    assert contact.marketing_consent_at.astimezone(dt.UTC) == POSTED_AT
    assert contact.marketing_consent_source_id == event.source_id
    assert contact.marketing_consent_method == "form_checkbox"
    details = session.get(m.Activity, linked(event, "activity")[0]).details
    assert details["extra_fields"] == {"budget": "10k"}
    assert details["utm"] == {"source": "newsletter"}
    assert details["consent"]["status"] == "granted"


def test_a_multipart_form_is_read_and_its_files_are_not_kept(session: Session) -> None:
    body, content_type = multipart(
        [("email", "grace@example.com"), ("phone", "+44 20 7946 0958")], file=True
    )
    event = run_form(session, body, content_type)
    assert event.status == "processed", event.errors
    contact = session.scalars(select(m.Contact)).one()
    assert (contact.email_normalized, contact.phone) == ("grace@example.com", "+442079460958")
    assert contact.marketing_consent is None  # no consent field: nothing stated
    details = session.get(m.Activity, linked(event, "activity")[0]).details
    assert "extra_fields" not in details


@pytest.mark.parametrize(
    ("pairs", "status"),
    [
        ([("consent", "on")], "granted"),
        ([("consent", "no")], "denied"),
        # The hidden "no" first, the ticked box after: the last value is the answer.
        ([("consent", "no"), ("consent", "yes")], "granted"),
        ([("consent", "OFF")], "denied"),
        ([("consent", "")], None),
        ([], None),
    ],
)
def test_the_consent_checkbox(pairs: list[tuple[str, str]], status: str | None) -> None:
    body = urlencode([("email", "a@example.com"), *pairs]).encode()
    fields = read_form(body, URLENCODED)
    assert isinstance(fields, dict)
    consent = submission(fields).document.get("consent")
    assert (consent or {}).get("status") == status


def test_a_consent_value_that_says_nothing_known_is_refused_by_name(session: Session) -> None:
    event = run_form(session, b"email=a%40example.com&consent=perhaps")
    assert event.status == "invalid"
    assert [e["field"] for e in event.errors] == ["consent"]


def test_a_form_without_email_or_phone_is_invalid(session: Session) -> None:
    event = run_form(session, b"first_name=Nobody")
    assert event.status == "invalid"
    assert "email or phone" in event.errors[0]["message"]
    assert session.scalars(select(m.Contact)).first() is None


def test_a_later_form_does_not_override_a_newer_consent(session: Session) -> None:
    source = SourceFactory(provider="form")
    run_form(session, b"email=a%40example.com&consent=yes", source=source)
    contact = session.scalars(select(m.Contact)).one()
    contact.marketing_consent, contact.marketing_consent_at = "denied", POSTED_AT.replace(year=2027)
    session.flush()
    run_form(session, b"email=a%40example.com&consent=yes&x=1", source=source)
    session.refresh(contact)
    assert contact.marketing_consent == "denied"


@pytest.mark.parametrize(
    ("body", "content_type", "field"),
    [
        (b"email=\xff\xfe", URLENCODED, "body"),
        ("&".join(f"f{i}=x" for i in range(MAX_FIELDS + 1)).encode(), URLENCODED, "body"),
        (b"--nope\r\n", "multipart/form-data; boundary=other", "body"),
        (b"{}", "application/json", "content_type"),
    ],
)
def test_an_unreadable_form_is_named(body: bytes, content_type: str, field: str) -> None:
    error = read_form(body, content_type)
    assert not isinstance(error, dict)
    assert error.field == field


def classify(body: bytes, content_type: str = URLENCODED) -> object:
    request = ProviderRequest({"Content-Type": content_type}, body, content_type)
    return get_provider("form").classify(request, max_depth=32)


def test_a_filled_honeypot_is_classified_as_ignored() -> None:
    delivery = classify(b"email=bot%40example.com&_gotcha=http%3A%2F%2Fspam.example")
    assert (delivery.topic, delivery.handled, delivery.errors) == ("honeypot", False, None)
    real = classify(b"email=bot%40example.com&_gotcha=")
    assert (real.topic, real.handled, real.errors) == ("submission", True, None)
    # The same body is the same delivery: a double click is one lead.
    assert real.webhook_id == classify(b"email=bot%40example.com&_gotcha=").webhook_id


def test_a_form_the_lead_rules_refuse_is_named_in_the_forms_own_fields() -> None:
    content_type = "application/x-www-form-urlencoded"
    request = ProviderRequest({"Content-Type": content_type}, b"first_name=Nobody", content_type)
    form = get_provider("form")
    assert isinstance(form, Form)
    mapped = form.lead_document(request)
    assert mapped is not None
    with pytest.raises(InvalidInput) as refused:
        payload_from_document(LeadPayload, mapped.document)
    assert mapped.translate(refused.value.errors)


@pytest.mark.parametrize(
    ("value", "origin"),
    [
        ("https://Example.com", "https://example.com"),
        ("https://example.com:443/contact?x=1", "https://example.com"),
        ("http://localhost:8080/form", "http://localhost:8080"),
        ("null", None),
        ("ftp://example.com", None),
        ("https://example.com:99999", None),
        (None, None),
    ],
)
def test_origin_of(value: str | None, origin: str | None) -> None:
    assert origin_of(value) == origin
