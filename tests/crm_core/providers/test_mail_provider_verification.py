"""Mailgun, SendGrid and Postmark: each signature as the provider documents it, and what
each post is (its kind, topic and delivery id)."""

from __future__ import annotations

import json
import time

import pytest

from crm_core.errors import InvalidInput
from crm_core.payloads.kinds import EventKind
from crm_core.providers import PROVIDERS, ProviderRequest, SignatureError, get_provider
from crm_core.providers.sendgrid import batch_id
from tests.mail_provider_requests import (
    MAILGUN_KEY,
    SENDGRID_VECTOR,
    SendGridSigner,
    basic,
    mailgun_event,
    mailgun_form,
    mailgun_route_fields,
    postmark_json,
    sendgrid_inbound,
)
from tests.provider_requests import provider_fixture

JSON = "application/json"


def _request(
    body: bytes, content_type: str, headers: dict[str, str] | None = None
) -> ProviderRequest:
    sent = {"Content-Type": content_type, **(headers or {})}
    return ProviderRequest(sent, body, content_type.partition(";")[0])


def _receive(
    provider: str, request: ProviderRequest, *, secrets: list[str], key: str | None = None
):  # type: ignore[no-untyped-def]
    return get_provider(provider, None, key).receive(
        request, secrets=secrets, now=time.time(), tolerance=300, max_depth=64
    )


# --- Mailgun --------------------------------------------------------------------------------


def test_a_mailgun_event_signed_with_the_key_is_a_mail_event_keyed_by_its_token() -> None:
    body = mailgun_event("failed_permanent.json", token="t" * 50)
    delivery = _receive("mailgun", _request(body, JSON), secrets=[MAILGUN_KEY])
    assert (delivery.kind, delivery.topic, delivery.handled) == (
        EventKind.MAIL_EVENTS,
        "failed",
        True,
    )
    assert delivery.webhook_id == "t" * 50


def test_a_mailgun_route_post_is_an_email_keyed_by_its_token() -> None:
    body, content_type = mailgun_form(mailgun_route_fields(), token="r" * 50)
    delivery = _receive("mailgun", _request(body, content_type), secrets=[MAILGUN_KEY])
    assert (delivery.kind, delivery.topic, delivery.webhook_id) == (
        EventKind.EMAILS,
        "inbound",
        "r" * 50,
    )


def test_a_mailgun_route_post_with_attachments_is_multipart_and_verified_alike() -> None:
    files = {"attachment-1": ("invoice.pdf", b"%PDF-1.4", "application/pdf")}
    body, content_type = mailgun_form(mailgun_route_fields(), files=files)
    assert content_type.startswith("multipart/form-data")
    delivery = _receive("mailgun", _request(body, content_type), secrets=["old", MAILGUN_KEY])
    assert delivery.kind == EventKind.EMAILS


def test_mailgun_events_it_does_not_act_on_are_ignored() -> None:
    delivery = _receive(
        "mailgun", _request(mailgun_event("delivered.json"), JSON), secrets=[MAILGUN_KEY]
    )
    assert (delivery.topic, delivery.handled) == ("delivered", False)


@pytest.mark.parametrize(
    ("body", "why"),
    [
        (lambda: mailgun_event("complained.json", key="key-forged"), "does not match"),
        (lambda: mailgun_event("complained.json", at=time.time() - 3600), "more than 300 seconds"),
        (lambda: mailgun_event("complained.json", at=time.time() + 3600), "more than 300 seconds"),
        (lambda: json.dumps({"event-data": {"event": "failed"}}).encode(), "missing signature"),
        (lambda: b"not json", "missing signature"),
    ],
    ids=["forged", "stale", "future", "unsigned", "unreadable"],
)
def test_mailgun_refuses_forged_stale_and_unsigned_events(body, why: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(SignatureError, match=why):
        _receive("mailgun", _request(body(), JSON), secrets=[MAILGUN_KEY])


def test_a_mailgun_route_post_with_a_tampered_token_is_refused() -> None:
    body, content_type = mailgun_form(mailgun_route_fields(), token="a" * 50)
    tampered = body.replace(b"a" * 50, b"b" * 50)
    with pytest.raises(SignatureError, match="does not match"):
        _receive("mailgun", _request(tampered, content_type), secrets=[MAILGUN_KEY])


# --- SendGrid -------------------------------------------------------------------------------


def test_sendgrids_own_test_vector_verifies() -> None:
    """SendGrid's library's vector: its key, signature, timestamp and payload."""
    body = SENDGRID_VECTOR["payload"].encode()
    headers = {
        "X-Twilio-Email-Event-Webhook-Signature": SENDGRID_VECTOR["signature"],
        "X-Twilio-Email-Event-Webhook-Timestamp": SENDGRID_VECTOR["timestamp"],
    }
    provider = get_provider("sendgrid", None, SENDGRID_VECTOR["public_key"])
    provider.verify(_request(body, JSON, headers), secrets=[], now=1600112502, tolerance=300)
    with pytest.raises(SignatureError, match="does not match"):
        provider.verify(
            _request(body.replace(b"dropped", b"dr0pped"), JSON, headers),
            secrets=[],
            now=1600112502,
            tolerance=300,
        )


def test_a_signed_sendgrid_batch_is_one_mail_event_keyed_by_its_event_ids() -> None:
    signer = SendGridSigner()
    body = provider_fixture("sendgrid/event_batch.json")
    delivery = _receive(
        "sendgrid", _request(body, JSON, signer.headers(body)), secrets=[], key=signer.public_key
    )
    ids = [event["sg_event_id"] for event in json.loads(body)]
    assert (delivery.kind, delivery.topic, delivery.handled) == (
        EventKind.MAIL_EVENTS,
        "delivery_events",
        True,
    )
    assert delivery.webhook_id == batch_id(ids) == batch_id(list(reversed(ids)))


def test_a_batch_of_one_event_is_keyed_by_its_sg_event_id() -> None:
    signer = SendGridSigner()
    body = provider_fixture("sendgrid/engagement_batch.json")
    delivery = _receive(
        "sendgrid", _request(body, JSON, signer.headers(body)), secrets=[], key=signer.public_key
    )
    assert (delivery.webhook_id, delivery.handled) == ("FOTFFO0ecsBE-zxFXfs6WA==", False)


@pytest.mark.parametrize("case", ["other key", "stale", "tampered", "no signature", "no key"])
def test_sendgrid_refuses_batches_it_cannot_verify(case: str) -> None:
    signer, other = SendGridSigner(), SendGridSigner()
    body = provider_fixture("sendgrid/event_batch.json")
    headers = signer.headers(body, at=time.time() - 3600 if case == "stale" else None)
    key: str | None = signer.public_key
    if case == "other key":
        key = other.public_key
    elif case == "tampered":
        body = body.replace(b"bounced@example.org", b"someone@example.org")
    elif case == "no signature":
        del headers["X-Twilio-Email-Event-Webhook-Signature"]
    elif case == "no key":
        key = None
    with pytest.raises(SignatureError) as refused:
        _receive("sendgrid", _request(body, JSON, headers), secrets=["u:p"], key=key)
    if case == "no key":
        assert "set-key" in str(refused.value)


def test_sendgrid_inbound_parse_needs_the_sources_basic_credentials() -> None:
    body, content_type = sendgrid_inbound("inbound_parsed.multipart")
    delivery = _receive("sendgrid", _request(body, content_type, basic("sg:pw")), secrets=["sg:pw"])
    assert (delivery.kind, delivery.topic) == (EventKind.EMAILS, "inbound")
    assert delivery.webhook_id.startswith("sha256:")
    for headers in ({}, basic("sg:wrong")):
        with pytest.raises(SignatureError):
            _receive("sendgrid", _request(body, content_type, headers), secrets=["sg:pw"])


def test_a_sendgrid_key_is_checked_when_it_is_given() -> None:
    sendgrid = PROVIDERS["sendgrid"]
    key = SendGridSigner().public_key
    pem = f"-----BEGIN PUBLIC KEY-----\n{key[:40]}\n{key[40:]}\n-----END PUBLIC KEY-----\n"
    assert sendgrid.checked_public_key(pem) == key
    for wrong in ("not base64!", "aGVsbG8=", ""):
        with pytest.raises(InvalidInput):
            sendgrid.checked_public_key(wrong)
    with pytest.raises(InvalidInput, match="take no public key"):
        PROVIDERS["postmark"].checked_public_key(key)


# --- Postmark -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fixture", "kind", "topic", "webhook_id"),
    [
        ("inbound.json", EventKind.EMAILS, "Inbound", "73e6d360-66eb-11e1-8e72-a8904824019b"),
        ("bounce.json", EventKind.MAIL_EVENTS, "Bounce", "Bounce:4323372036854775807"),
        ("spam_complaint.json", EventKind.MAIL_EVENTS, "SpamComplaint", "SpamComplaint:42"),
    ],
)
def test_postmark_posts_are_classified_by_record_type(
    fixture: str, kind: EventKind, topic: str, webhook_id: str
) -> None:
    delivery = _receive(
        "postmark", _request(postmark_json(fixture), JSON, basic("pm:pw")), secrets=["pm:pw"]
    )
    assert (delivery.kind, delivery.topic, delivery.webhook_id, delivery.handled) == (
        kind,
        topic,
        webhook_id,
        True,
    )


def test_postmark_delivery_records_are_ignored_and_unauthenticated_posts_refused() -> None:
    body = postmark_json("delivery.json")
    delivery = _receive("postmark", _request(body, JSON, basic("pm:pw")), secrets=["pm:pw"])
    assert (delivery.topic, delivery.handled) == ("Delivery", False)
    with pytest.raises(SignatureError):
        _receive("postmark", _request(body, JSON), secrets=["pm:pw"])


@pytest.mark.parametrize("token", ["t\ud800", "", "x" * 300, 12])
def test_a_mailgun_token_that_is_no_token_is_refused(token: object) -> None:
    body = json.dumps(
        {"signature": {"timestamp": str(int(time.time())), "token": token, "signature": "00"}}
    )
    with pytest.raises(SignatureError):
        _receive("mailgun", _request(body.encode(), JSON), secrets=[MAILGUN_KEY])
