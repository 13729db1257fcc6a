"""Erasure and export of a person who came in through every door: after the erasure, a dump of
the whole database holds neither their address nor their name nor their phone number."""

from __future__ import annotations

import base64
import datetime as dt
import json
import pathlib
import re
import subprocess
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from flask import Flask
from sqlalchemy import Engine, select
from sqlalchemy.engine import make_url

from crm_core.attachments.models import StoredAttachment
from crm_core.bounces.models import (
    AppliedDeliveryReport,
    SentKind,
    SentMessage,
    Suppression,
    SuppressionReason,
)
from crm_core.bounces.reports import DeliveryReport, ReportOutcome, apply_delivery_reports
from crm_core.bounces.services import BouncePolicy
from crm_core.bounces.suppression import erased_address_token, suppress
from crm_core.campaigns import scheduling
from crm_core.campaigns.models import CampaignSend, CampaignStatus, MarketingCampaign
from crm_core.config import Settings
from crm_core.customers.models import Contact
from crm_core.db import utcnow
from crm_core.followups.models import FollowUpTask, SubjectType
from crm_core.ingestion import processing, single_event
from crm_core.ingestion.models import EventStatus, InboxEvent
from crm_core.ingestion.policy import IngestPolicy
from crm_core.notifications.services import add_subscription
from tests.s3_server import s3_credentials_fixture, s3_server_fixture
from tests.smtp_server import smtp_server
from tests.webhooks.conftest import Sender
from webhooks.app import create_app

__all__ = ["s3_credentials_fixture", "s3_server_fixture", "smtp_server"]

EMAIL = "Wilhelmina.Quarterfield@gmail.com"
ALT_EMAIL = "wq.private@fastmail.example"
FIRST, LAST = "Wilhelmina", "Quarterfield"
PHONE = "+44 7700 900123"
# Every spelling that must be gone: any case, E.164, national digits.
GONE = [
    EMAIL.lower(),
    ALT_EMAIL,
    FIRST.lower(),
    LAST.lower(),
    "447700900123",
    "7700900123",
    "7700 900123",
]


# The file they mailed in: its bytes name them.
CV = f"Curriculum vitae of {FIRST} {LAST}, {EMAIL}, {PHONE}\n".encode() * 40
# A file a stranger sent too: the same bytes are one blob, which stays for the stranger.
SHARED = b"%PDF-1.4 the price list, the same for everyone\n" * 40
REPORT = DeliveryReport(
    provider="mailgun",
    report_id="ev-77",
    recipient=EMAIL,
    outcome=ReportOutcome.BOUNCED,
    permanent=True,
    provider_message_id="mg-camp-1",
    reason=f"550 5.1.1 <{EMAIL.lower()}>: mailbox of {FIRST} {LAST} unavailable",
)


@dataclass(frozen=True)
class Blobs:
    """Where the test app keeps attachments, and a way to read every stored byte back."""

    url: str
    endpoint_url: str
    read_all: Callable[[], dict[str, bytes]]


@pytest.fixture(params=["folder", "bucket"])
def blobs(request: pytest.FixtureRequest, tmp_path: pathlib.Path) -> Blobs:
    if request.param == "folder":
        root = tmp_path / "blobs"

        def files() -> dict[str, bytes]:
            return {p.name: p.read_bytes().lower() for p in root.rglob("*") if p.is_file()}

        return Blobs(f"file://{root}", "", files)
    request.getfixturevalue("s3_credentials")
    server = request.getfixturevalue("s3_server")
    bucket, client = server.new_bucket(), server.client()

    def objects() -> dict[str, bytes]:
        listed = client.list_objects_v2(Bucket=bucket).get("Contents", [])
        return {
            o["Key"]: client.get_object(Bucket=bucket, Key=o["Key"])["Body"].read().lower()
            for o in listed
        }

    return Blobs(f"s3://{bucket}/attachments", server.endpoint_url, objects)


@pytest.fixture
def app(database_url: str, committed_db: Engine, blobs: Blobs) -> Flask:
    """The webhooks test app, keeping attachments in a folder or a bucket of this test's own."""
    settings = Settings(
        database_url=database_url,
        broker_url="memory://",
        ratelimit_url="memory://",
        ratelimit_prefix=f"test-{uuid.uuid4().hex}",
        max_json_bytes=256 * 1024,
        max_email_bytes=256 * 1024,
        secret_key="webhooks test secret key",
        blob_url=blobs.url,
        blob_s3_endpoint_url=blobs.endpoint_url,
    )
    return create_app(settings)


def attachment(filename: str, content: bytes) -> dict:
    return {
        "filename": filename,
        "content_type": "application/pdf",
        "content": base64.b64encode(content).decode(),
    }


def process_all(app: Flask) -> None:
    settings = app.extensions["crm"].settings
    policy = IngestPolicy.from_settings(settings)
    sessions = app.extensions["crm"].sessions
    with sessions() as session:
        waiting = list(
            session.scalars(
                select(InboxEvent.id)
                .where(InboxEvent.status == EventStatus.RECEIVED)
                .order_by(InboxEvent.id)
            )
        )
    for event_id in waiting:
        with sessions.begin() as session:
            assert processing.claim_event(session, event_id=event_id)
            single_event.run_event(session, event_id=event_id, policy=policy)


def post(sender: Sender, kind: str, doc: dict) -> int:
    response = sender.post(kind, json.dumps(doc).encode())
    assert response.status_code == 202, response.json
    return response.json["event_id"]


def seed_person(app: Flask, sender: Sender, key: str, smtp_server) -> int:
    """The person through leads, a help desk ticket and a reply, an order, a deal, the write
    API (a second address merged in, a call logged with an Idempotency-Key, an edit), a
    campaign send, a follow-up, a suppression and a notification."""
    crm = app.extensions["crm"]
    crm.settings.mail_url = smtp_server.url()
    auth = {"Authorization": f"Bearer {key}"}
    with crm.sessions.begin() as session:
        add_subscription(session, url="https://hooks.example/crm", events=["*"])
    consent = {"status": "granted", "at": "2026-11-30T10:00:00Z", "method": "checkbox"}
    lead = {
        "email": EMAIL,
        "first_name": FIRST,
        "last_name": LAST,
        "phone": PHONE,
        "message": f"Hello, this is {FIRST} {LAST}, call me on {PHONE}",
        "consent": consent,
    }
    lead_event = post(sender, "leads", lead)
    ticket = {
        "external_id": "T-77",
        "subject": f"{FIRST} cannot log in",
        "description": f"{FIRST} {LAST} ({EMAIL}) reports a failure",
        "requester": {"email": EMAIL, "name": f"{FIRST} {LAST}", "external_id": "req-77"},
        "comments": [{"body": f"Regards, {FIRST}", "external_id": "c1"}],
    }
    ticket_event = post(sender, "tickets", ticket)
    order = {
        "order_number": "Q-1",
        "email": EMAIL,
        "currency": "EUR",
        "lines": [{"sku": "A", "quantity": 1, "unit_price": "9.99"}],
    }
    post(sender, "orders", order)
    deal = {"external_id": "D-9", "email": EMAIL, "name": f"Deal for {LAST}", "amount": "100"}
    post(sender, "deals", deal)
    mail = {
        "from": f"{FIRST} {LAST} <{EMAIL}>",
        "to": ["support@acme.test"],
        "subject": "My CV",
        "message_id": "<cv-1@gmail.example>",
        "text": "Attached, with the price list.",
        "attachments": [attachment(f"{LAST}-cv.pdf", CV), attachment("prices.pdf", SHARED)],
    }
    post(sender, "emails", mail)
    stranger = {
        "from": "Olaf Stranger <olaf@stranger.example>",
        "to": ["support@acme.test"],
        "subject": "Prices",
        "message_id": "<prices-1@stranger.example>",
        "text": "The price list.",
        "attachments": [attachment("prices.pdf", SHARED)],
    }
    post(sender, "emails", stranger)
    process_all(app)
    with crm.sessions() as session:
        event = session.get(InboxEvent, lead_event)
        [contact_id] = [e.entity_id for e in event.entities if e.entity_type == "contact"]
        contact = session.get_one(Contact, contact_id)
        customer_id = contact.customer_id
        case_id = next(
            e.entity_id
            for e in session.get_one(InboxEvent, ticket_event).entities
            if e.entity_type == "support_case"
        )
    client = sender.client
    reply = client.post(
        f"/api/cases/{case_id}/reply", json={"body": f"Dear {FIRST}, fixed."}, headers=auth
    )
    assert reply.status_code == 201, reply.json
    second = client.post(
        f"/api/customers/{customer_id}/contacts",
        json={"email": ALT_EMAIL, "full_name": f"{FIRST} {LAST}"},
        headers={**auth, "Idempotency-Key": "alt-1"},
    )
    assert second.status_code == 201, second.json
    merged = client.post(
        f"/api/contacts/{second.json['id']}/merge", json={"into": contact_id}, headers=auth
    )
    assert merged.status_code == 200, merged.json
    call = client.post(
        "/api/activities",
        json={"type": "call", "summary": f"Called {FIRST} on {PHONE}", "contact_id": contact_id},
        headers={**auth, "Idempotency-Key": "call-1"},
    )
    assert call.status_code == 201, call.json
    edit = client.patch(
        f"/api/contacts/{contact_id}", json={"job_title": f"{LAST} Ventures CEO"}, headers=auth
    )
    assert edit.status_code == 200, edit.json
    now = utcnow()
    with crm.sessions.begin() as session:
        campaign = MarketingCampaign(
            code="winter", name="Winter", status=CampaignStatus.SENDING, subject="Hi", segment={}
        )
        session.add(campaign)
        session.flush()
        assert scheduling.materialize_recipients(session, campaign=campaign, now=now) >= 1
        send = session.scalars(select(CampaignSend)).first()
        session.add(
            SentMessage(
                message_id="camp-1@crm.example",
                recipient=EMAIL.lower(),
                kind=SentKind.CAMPAIGN,
                provider_message_id="mg-camp-1",
                campaign_send_id=send.id if send is not None else None,
            )
        )
        session.flush()
        policy = BouncePolicy.from_settings(crm.settings)
        assert apply_delivery_reports(session, [REPORT], policy=policy)
        session.add(
            FollowUpTask(
                rule="call-back",
                subject_type=SubjectType.CONTACT,
                subject_id=contact_id,
                contact_id=contact_id,
                customer_id=customer_id,
                title=f"Call {FIRST} {LAST} back",
                due_at=now,
            )
        )
        suppress(session, email_normalized=ALT_EMAIL, reason=SuppressionReason.UNSUBSCRIBED)
    return contact_id


def dump(engine: Engine) -> str:
    """Everything the database holds, as text, lower-cased."""
    url = engine.url
    if url.get_backend_name() == "sqlite":
        with engine.connect() as conn:
            raw = conn.connection.dbapi_connection
            return "\n".join(raw.iterdump()).lower()  # type: ignore[union-attr]
    plain = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    out = subprocess.run(
        ["pg_dump", "--data-only", "--no-owner", plain], capture_output=True, check=True
    )
    return out.stdout.decode("utf-8", errors="replace").lower()


def file_bytes(engine: Engine) -> bytes:
    """SQLite: the database file and its write-ahead log as stored, lower-cased."""
    path = pathlib.Path(engine.url.database or "")
    wal = path.with_name(path.name + "-wal")
    return (path.read_bytes() + (wal.read_bytes() if wal.exists() else b"")).lower()


def test_an_erased_person_is_nowhere_in_the_database(
    app: Flask,
    sender: Sender,
    make_key,
    committed_db: Engine,
    smtp_server,
    blobs: Blobs,
) -> None:
    admin = make_key("admin", "read", "write", "send", "admin")
    contact_id = seed_person(app, sender, admin, smtp_server)
    before = dump(committed_db)
    for needle in (EMAIL.lower(), ALT_EMAIL, FIRST.lower(), LAST.lower(), "7700 900123"):
        assert needle in before, f"the seed should hold {needle!r}"
    blobs_before = blobs.read_all()
    assert len(blobs_before) == 2  # the CV, and the price list kept once for both senders
    assert any(EMAIL.lower().encode() in content for content in blobs_before.values())
    with app.extensions["crm"].sessions() as session:
        [report] = session.scalars(select(AppliedDeliveryReport)).all()
        assert report.recipient == EMAIL.lower()
        assert report.sent_message_id is not None

    writer = make_key("writer", "read", "write")
    refused = sender.client.delete(
        f"/api/contacts/{contact_id}?erase=true", headers={"Authorization": f"Bearer {writer}"}
    )
    assert refused.status_code == 403
    assert refused.json["scope"] == "admin"

    answer = sender.client.delete(
        f"/api/contacts/{contact_id}?erase=true", headers={"Authorization": f"Bearer {admin}"}
    )
    assert answer.status_code == 200, answer.json
    assert answer.json["contact_id"] == contact_id
    assert answer.json["steps"]["inbox_events"] >= 4
    assert answer.json["steps"]["contacts"] == 2  # the contact and the one merged into it

    after = dump(committed_db)
    left = {needle: _around(after, needle) for needle in GONE if needle in after}
    assert left == {}
    if committed_db.url.get_backend_name() == "sqlite":
        files = file_bytes(committed_db)
        assert {needle for needle in GONE if needle.encode() in files} == set()
    assert answer.json["steps"]["attachments"] == 2
    assert answer.json["steps"]["delivery_reports"] == 1
    blobs_after = blobs.read_all()
    left_in_files = {
        key: needle
        for key, content in blobs_after.items()
        for needle in GONE
        if needle.encode() in content
    }
    assert left_in_files == {}
    # The stranger's price list stays: their row still names it.
    assert list(blobs_after.values()) == [SHARED.lower()]

    with app.extensions["crm"].sessions() as session:
        tokens = set(session.scalars(select(Suppression.email_normalized)))
        secret = app.extensions["crm"].settings.resolved_secret_key()
        for address in (EMAIL, ALT_EMAIL):
            assert erased_address_token(secret_key=secret, email_normalized=address) in tokens
        contact = session.get_one(Contact, contact_id)
        assert contact.erased_at is not None
        assert contact.email_normalized is None
        erased = select(Contact.id).where(Contact.erased_at.is_not(None))
        sends = session.scalars(select(CampaignSend).where(CampaignSend.contact_id.in_(erased)))
        sends = sends.all()
        assert sends
        assert all(s.email == "" and s.status == "failed" for s in sends)
        assert [a.filename for a in session.scalars(select(StoredAttachment))] == ["prices.pdf"]
        [report] = session.scalars(select(AppliedDeliveryReport)).all()
        assert (report.provider, report.report_id, report.recipient) == ("mailgun", "ev-77", "")
    # The provider delivers the same report again: it is still recognised, and ignored.
    with app.extensions["crm"].sessions.begin() as session:
        policy = BouncePolicy.from_settings(app.extensions["crm"].settings)
        assert apply_delivery_reports(session, [REPORT], policy=policy) == []
        assert len(session.scalars(select(AppliedDeliveryReport)).all()) == 1
    again = sender.client.delete(
        f"/api/contacts/{contact_id}?erase=true", headers={"Authorization": f"Bearer {admin}"}
    )
    assert again.status_code == 200
    assert again.json["already_erased"] is True

    # The same address again is a new person, whom no campaign mails until they opt in again.
    returned = post(sender, "leads", {"email": EMAIL, "first_name": FIRST})
    process_all(app)
    with app.extensions["crm"].sessions.begin() as session:
        event = session.get_one(InboxEvent, returned)
        [new_id] = [e.entity_id for e in event.entities if e.entity_type == "contact"]
        assert new_id != contact_id
        campaign = session.scalars(select(MarketingCampaign)).one()
        scheduling.materialize_recipients(session, campaign=campaign, now=utcnow())
        claimed = scheduling.claim_batch(
            session, campaign_id=campaign.id, size=100, now=utcnow(), secret_key=secret
        )
        assert new_id not in {c.contact_id for c in claimed}
        refused = session.scalars(select(CampaignSend).where(CampaignSend.contact_id == new_id))
        assert [s.error for s in refused] == [scheduling.ERASED_ERROR]


def _around(haystack: str, needle: str) -> list[str]:
    return [
        haystack[max(0, m.start() - 80) : m.end() + 40]
        for m in re.finditer(re.escape(needle), haystack)
    ][:3]


def test_the_export_holds_everything_and_needs_admin(
    app: Flask, sender: Sender, make_key, smtp_server
) -> None:
    admin = make_key("admin", "read", "write", "send", "admin")
    contact_id = seed_person(app, sender, admin, smtp_server)
    reader = make_key("reader", "read")
    path = f"/api/contacts/{contact_id}/export"
    refused = sender.client.get(path, headers={"Authorization": f"Bearer {reader}"})
    assert refused.status_code == 403
    shown = sender.client.get(path, headers={"Authorization": f"Bearer {admin}"})
    assert shown.status_code == 200, shown.json
    doc = shown.json
    assert {c["email_normalized"] for c in doc["contacts"]} == {EMAIL.lower(), ALT_EMAIL}
    assert [c["name"] for c in doc["customers"]] == [f"{FIRST} {LAST}"]
    for part in ("support_cases", "orders", "opportunities", "campaign_sends", "follow_ups"):
        assert doc[part], part
    assert doc["sent_messages"]
    assert any(FIRST in (e.get("body") or "") for e in doc["inbox_events"])
    assert {a["type"] for a in doc["activities"]} >= {"lead_captured", "email_sent", "call"}
    assert doc["audit_entries"]
    missing = sender.client.get(
        "/api/contacts/999999/export", headers={"Authorization": f"Bearer {admin}"}
    )
    assert missing.status_code == 404


@pytest.mark.parametrize("value", ["maybe", "2"])
def test_a_bad_erase_flag_is_a_400_naming_it(
    app: Flask, sender: Sender, api_key: str, value: str
) -> None:
    answer = sender.client.delete(
        f"/api/contacts/1?erase={value}", headers={"Authorization": f"Bearer {api_key}"}
    )
    assert answer.status_code == 400
    assert answer.json["errors"][0]["field"] == "erase"


def test_an_event_without_its_body_says_so(app: Flask, sender: Sender, api_key: str) -> None:
    from crm_core.ingestion.retention import prune_bodies

    event_id = post(sender, "leads", {"email": "kept@example.org"})
    process_all(app)
    auth = {"Authorization": f"Bearer {api_key}"}
    shown = sender.client.get(f"/events/{event_id}", headers=auth).json
    assert (shown["body_removed_at"], shown["body_removed_by"]) == (None, None)
    with app.extensions["crm"].sessions.begin() as session:
        later = utcnow() + dt.timedelta(days=1)
        assert prune_bodies(session, cutoff=later, limit=10) == 1
    shown = sender.client.get(f"/events/{event_id}", headers=auth).json
    assert shown["status"] == "processed"
    assert shown["body_removed_by"] == "retention"
    assert shown["body_removed_at"] is not None
    assert shown["entities"]
