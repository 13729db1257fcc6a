"""POST /webhooks/<source> from Mailgun, SendGrid and Postmark: stored verbatim once, or
refused with a problem document, never a 500."""

from __future__ import annotations

import time

import pytest
from flask import Flask
from sqlalchemy import select
from werkzeug.test import TestResponse

from crm_core.ingestion import services
from crm_core.ingestion.models import EventStatus, InboxEvent
from tests.mail_provider_requests import (
    JSON,
    MAILGUN_KEY,
    SendGridSigner,
    basic,
    mailgun_event,
    mailgun_form,
    mailgun_route_fields,
    postmark_json,
    sendgrid_inbound,
)
from tests.provider_requests import provider_fixture

PROBLEM = "application/problem+json"


def _source(app: Flask, provider: str, *, public_key: str | None = None) -> str | None:
    secret = MAILGUN_KEY if provider == "mailgun" else None
    with app.extensions["crm"].sessions.begin() as session:
        _, secret = services.create_source(
            session, name=provider, provider=provider, secret=secret, public_key=public_key
        )
    return secret


def _post(
    app: Flask, source: str, body: bytes, content_type: str, headers: dict[str, str] | None = None
) -> TestResponse:
    sent = {"Content-Type": content_type, **(headers or {})}
    return app.test_client().post(f"/webhooks/{source}", data=body, headers=sent)


def _events(app: Flask) -> list[InboxEvent]:
    with app.extensions["crm"].sessions() as session:
        return list(session.scalars(select(InboxEvent).order_by(InboxEvent.id)))


def _refused(response: TestResponse, status: int = 401) -> None:
    assert response.status_code == status, response.data
    assert response.content_type == PROBLEM
    if status == 401:
        assert response.json["type"].endswith("invalid-signature")


def test_a_mailgun_route_post_is_stored_verbatim_as_an_email(app: Flask) -> None:
    _source(app, "mailgun")
    body, content_type = mailgun_form(
        mailgun_route_fields(), files={"attachment-1": ("a.pdf", b"%PDF", "application/pdf")}
    )
    response = _post(app, "mailgun", body, content_type)
    assert response.status_code == 202, response.json
    [event] = _events(app)
    assert (event.kind, event.topic, event.body, event.content_type) == (
        "emails",
        "inbound",
        body,
        content_type,
    )


def test_a_replayed_mailgun_token_is_a_redelivery_whatever_its_body(app: Flask) -> None:
    _source(app, "mailgun")
    first = mailgun_event("failed_permanent.json", token="k" * 50)
    replayed = mailgun_event("complained.json", token="k" * 50)  # the same signature, another body
    answers = [_post(app, "mailgun", body, JSON) for body in (first, replayed, first)]
    assert [a.status_code for a in answers] == [202, 200, 200]
    assert {a.json["event_id"] for a in answers} == {answers[0].json["event_id"]}
    [event] = _events(app)
    assert (event.body, event.kind, event.topic) == (first, "mail_events", "failed")


@pytest.mark.parametrize("case", ["forged", "stale", "unsigned"])
def test_forged_stale_or_unsigned_mailgun_posts_are_401_problems(app: Flask, case: str) -> None:
    _source(app, "mailgun")
    if case == "forged":
        body, content_type = mailgun_form(mailgun_route_fields(), key="key-someone-else")
    elif case == "stale":
        body, content_type = mailgun_form(mailgun_route_fields(), at=time.time() - 3600)
    else:
        body, content_type = (
            b"recipient=support%40mg.example.com",
            "application/x-www-form-urlencoded",
        )
    _refused(_post(app, "mailgun", body, content_type))
    assert _events(app) == []


def test_a_sendgrid_batch_needs_a_key_and_its_signature(app: Flask) -> None:
    _source(app, "sendgrid")
    signer = SendGridSigner()
    body = provider_fixture("sendgrid/event_batch.json")
    refused = _post(app, "sendgrid", body, JSON, signer.headers(body))
    _refused(refused)
    assert "set-key" in refused.json["detail"]
    with app.extensions["crm"].sessions.begin() as session:
        services.set_source_public_key(session, name="sendgrid", public_key=signer.public_key)
    # The cached source is read again when its credentials do not verify: the key works at once.
    first = _post(app, "sendgrid", body, JSON, signer.headers(body))
    again = _post(app, "sendgrid", body, JSON, signer.headers(body))
    assert (first.status_code, again.status_code) == (202, 200)
    _refused(_post(app, "sendgrid", body, JSON, SendGridSigner().headers(body)))
    [event] = _events(app)
    assert (event.kind, event.topic, event.status) == (
        "mail_events",
        "delivery_events",
        EventStatus.RECEIVED,
    )


def test_a_sendgrid_inbound_post_needs_the_credentials_of_its_url(app: Flask) -> None:
    credentials = _source(app, "sendgrid")
    assert credentials is not None
    body, content_type = sendgrid_inbound("inbound_parsed.multipart")
    _refused(_post(app, "sendgrid", body, content_type))
    _refused(_post(app, "sendgrid", body, content_type, basic("sendgrid-0:wrong")))
    response = _post(app, "sendgrid", body, content_type, basic(credentials))
    assert response.status_code == 202
    [event] = _events(app)
    assert (event.kind, event.topic) == ("emails", "inbound")
    assert "authorization" not in {name.lower() for name in event.headers}


def test_postmark_posts_with_the_credentials_of_their_url(app: Flask) -> None:
    credentials = _source(app, "postmark")
    assert credentials is not None
    _refused(_post(app, "postmark", postmark_json("inbound.json"), JSON))
    kinds = []
    for fixture in ("inbound.json", "bounce.json", "spam_complaint.json", "delivery.json"):
        response = _post(app, "postmark", postmark_json(fixture), JSON, basic(credentials))
        assert response.status_code == 202
        kinds.append(response.json["status"])
    assert kinds == ["received", "received", "received", "ignored"]
    assert [(e.kind, e.topic) for e in _events(app)] == [
        ("emails", "Inbound"),
        ("mail_events", "Bounce"),
        ("mail_events", "SpamComplaint"),
        ("mail_events", "Delivery"),
    ]


def test_a_mail_providers_body_may_be_as_large_as_an_email(app: Flask) -> None:
    """The app's JSON limit is 64 KiB and its e-mail limit 256 KiB (tests/webhooks/conftest)."""
    credentials = _source(app, "postmark")
    assert credentials is not None
    big = postmark_json("inbound.json", TextBody="x" * 100_000)
    assert _post(app, "postmark", big, JSON, basic(credentials)).status_code == 202
    huge = postmark_json("inbound.json", TextBody="x" * 300_000, MessageID="another")
    _refused(_post(app, "postmark", huge, JSON, basic(credentials)), 413)


def test_a_media_type_the_provider_does_not_send_is_a_415(app: Flask) -> None:
    _source(app, "postmark")
    _refused(_post(app, "postmark", b"From: a@b\r\n\r\nx", "message/rfc822"), 415)


def test_mail_events_have_no_standard_url(app: Flask) -> None:
    with app.extensions["crm"].sessions.begin() as session:
        services.create_source(session, name="ours")
    response = app.test_client().post(
        "/webhooks/ours/mail_events", data=b"[]", headers={"Content-Type": JSON}
    )
    _refused(response, 404)


def test_the_raw_mime_url_mailgun_is_given_reaches_the_same_source(app: Flask) -> None:
    """Mailgun posts the raw message when the route's URL ends in ``mime``: ``?as=mime``."""
    _source(app, "mailgun")
    raw = "From: Bob <bob@example.net>\r\nMessage-ID: <raw-1@example.net>\r\n\r\nhello\r\n"
    body, content_type = mailgun_form({"recipient": "support@mg.example.com", "body-mime": raw})
    response = app.test_client().post(
        "/webhooks/mailgun?as=mime", data=body, headers={"Content-Type": content_type}
    )
    assert response.status_code == 202
    [event] = _events(app)
    assert (event.kind, event.topic) == ("emails", "inbound")
