"""Mailgun, SendGrid and Postmark posts in our terms: delivery reports from their documented
events, and their inbound posts as the message a mailbox would have given."""

from __future__ import annotations

import datetime as dt
import hashlib
import json

import pytest

from crm_core.bounces.reports import DeliveryReport, ReportOutcome
from crm_core.config import Settings
from crm_core.errors import InvalidInput
from crm_core.ingestion.handlers import provider_email
from crm_core.ingestion.models import InboxEvent
from crm_core.ingestion.policy import IngestPolicy
from crm_core.mail import MailLimits
from crm_core.providers.mail_reading import MAIL_READERS, delivery_reports
from tests.mail_provider_requests import (
    mailgun_event,
    mailgun_form,
    mailgun_route_fields,
    postmark_json,
    sendgrid_inbound,
)
from tests.provider_requests import provider_fixture

LIMITS = MailLimits()


def _reports(provider: str, body: bytes) -> list[DeliveryReport]:
    return delivery_reports(provider, body, max_depth=64)


# --- delivery reports -----------------------------------------------------------------------


def test_mailgun_failed_permanent_is_a_permanent_bounce_of_its_recipient_and_message() -> None:
    [report] = _reports("mailgun", mailgun_event("failed_permanent.json"))
    assert report == DeliveryReport(
        provider="mailgun",
        report_id="G9Bn5sl1TC6nu79C8C0bwg",
        recipient="bounced@example.org",
        outcome=ReportOutcome.BOUNCED,
        permanent=True,
        provider_message_id="<20261203085300.1.C4F1E2D3B4A59687@mg.example.com>",
        message_id="20261203085300.1.C4F1E2D3B4A59687@mg.example.com",
        reason="bounce; 550; 5.1.1 The email account that you tried to reach does not exist.",
        occurred_at=dt.datetime.fromtimestamp(1764753598.332521, tz=dt.UTC),
    )


@pytest.mark.parametrize(
    ("fixture", "recipient", "outcome", "permanent"),
    [
        ("failed_temporary.json", "full@example.org", ReportOutcome.BOUNCED, False),
        ("complained.json", "annoyed@example.org", ReportOutcome.COMPLAINED, True),
        ("unsubscribed.json", "leaving@example.org", ReportOutcome.UNSUBSCRIBED, True),
    ],
)
def test_mailgun_events(
    fixture: str, recipient: str, outcome: ReportOutcome, permanent: bool
) -> None:
    [report] = _reports("mailgun", mailgun_event(fixture))
    assert (report.recipient, report.outcome, report.permanent) == (recipient, outcome, permanent)
    assert report.provider_message_id
    assert report.provider_message_id.startswith("<2026120308530")


def test_mailgun_events_not_acted_on_report_nothing() -> None:
    assert _reports("mailgun", mailgun_event("delivered.json")) == []


def test_a_mailgun_event_without_recipient_is_refused_by_its_fields() -> None:
    document = json.loads(mailgun_event("complained.json"))
    del document["event-data"]["recipient"]
    with pytest.raises(InvalidInput) as refused:
        _reports("mailgun", json.dumps(document).encode())
    assert [e.loc for e in refused.value.errors] == [("event-data", "recipient")]


def test_a_sendgrid_batch_is_one_report_per_event_acted_on() -> None:
    reports = _reports("sendgrid", provider_fixture("sendgrid/event_batch.json"))
    assert [(r.recipient, r.outcome, r.permanent) for r in reports] == [
        ("bounced@example.org", ReportOutcome.BOUNCED, True),
        ("blocked@example.org", ReportOutcome.BOUNCED, False),
        ("dropped@example.org", ReportOutcome.BOUNCED, True),
        ("spam@example.org", ReportOutcome.COMPLAINED, True),
        ("leaving@example.org", ReportOutcome.UNSUBSCRIBED, True),
        ("group.leaving@example.org", ReportOutcome.UNSUBSCRIBED, True),
    ]
    first = reports[0]
    assert first.report_id == "6g4ZI7SA-xmRDv57GoPIPw=="
    assert first.provider_message_id == "14c5d75ce93.dfd.64b469.filter0001.16648.5515E0B88.0"
    assert first.message_id == "14c5d75ce93.dfd.64b469@ismtpd-555"
    assert first.reason == "bounce; 5.0.0; 500 unknown recipient"
    assert first.occurred_at == dt.datetime.fromtimestamp(1764753598, tz=dt.UTC)


def test_a_sendgrid_drop_for_another_reason_is_transient() -> None:
    events = [
        {
            "email": "a@example.org",
            "event": "dropped",
            "reason": "Spam Content (if spam checker app enabled)",
            "sg_event_id": "x1",
        }
    ]
    [report] = _reports("sendgrid", json.dumps(events).encode())
    assert (report.outcome, report.permanent) == (ReportOutcome.BOUNCED, False)


def test_a_sendgrid_batch_names_each_bad_event_by_its_index() -> None:
    events = [{"event": "bounce", "sg_event_id": "a"}, "nonsense", {"event": "open"}]
    with pytest.raises(InvalidInput) as refused:
        _reports("sendgrid", json.dumps(events).encode())
    assert [e.loc for e in refused.value.errors] == [(0, "email"), (1,)]


@pytest.mark.parametrize(
    ("fixture", "recipient", "outcome", "permanent", "report_id"),
    [
        ("bounce.json", "bounced@example.org", ReportOutcome.BOUNCED, True, "4323372036854775807"),
        (
            "soft_bounce.json",
            "full@example.org",
            ReportOutcome.BOUNCED,
            False,
            "4323372036854775808",
        ),
        ("spam_complaint.json", "annoyed@example.org", ReportOutcome.COMPLAINED, True, "42"),
    ],
)
def test_postmark_records(
    fixture: str, recipient: str, outcome: ReportOutcome, permanent: bool, report_id: str
) -> None:
    [report] = _reports("postmark", postmark_json(fixture))
    assert (report.recipient, report.outcome, report.permanent, report.report_id) == (
        recipient,
        outcome,
        permanent,
        report_id,
    )
    assert report.provider_message_id == json.loads(postmark_json(fixture))["MessageID"]


def test_postmark_bounce_time_and_reason() -> None:
    [report] = _reports("postmark", postmark_json("soft_bounce.json"))
    assert report.occurred_at == dt.datetime(2026, 12, 3, 14, 34, 1, 123456, tzinfo=dt.UTC)
    assert report.reason is not None
    assert report.reason.startswith("SoftBounce; Unable to temporarily")


def test_postmark_notices_are_not_failures() -> None:
    assert (
        _reports("postmark", postmark_json("bounce.json", Type="AutoResponder", TypeCode=64)) == []
    )


# --- inbound mail ---------------------------------------------------------------------------


def _parsed(provider: str, body: bytes, content_type: str):  # type: ignore[no-untyped-def]
    event = InboxEvent(body=body, content_type=content_type, kind="emails")
    return provider_email(provider)(event, IngestPolicy.from_settings(Settings()))


def test_mailgun_parsed_fields_become_the_original_message() -> None:
    pdf = b"%PDF-1.4 invoice 2041"
    body, content_type = mailgun_form(
        mailgun_route_fields(), files={"attachment-1": ("invoice-2041.pdf", pdf, "application/pdf")}
    )
    parsed = _parsed("mailgun", body, content_type)
    assert (parsed.from_address, parsed.from_name) == ("alice@example.net", "Alice Moreau")
    assert parsed.message_id == "CAF2041invoice.alice@mail.example.net"
    assert parsed.subject == "Invoice 2041 is wrong"
    assert parsed.to == ("support@mg.example.com",)
    assert "counts the kettle twice" in parsed.text
    assert parsed.html is not None
    assert "<p>Hello,</p>" in parsed.html
    assert parsed.reply_text == "Hello,\n\nthe total on invoice 2041 counts the kettle twice."
    [attachment] = parsed.attachments
    assert (attachment.filename, attachment.content_type, attachment.size) == (
        "invoice-2041.pdf",
        "application/pdf",
        len(pdf),
    )
    assert attachment.sha256 == hashlib.sha256(pdf).hexdigest()
    # The same post is the same message, byte for byte: a replay is a duplicate.
    assert _parsed("mailgun", body, content_type).message_key == parsed.message_key


def test_mailgun_raw_mime_is_the_message_itself() -> None:
    raw = (
        b"From: Bob <bob@example.net>\r\nMessage-ID: <raw-1@example.net>\r\n"
        b"Subject: Raw\r\n\r\nbody\r\n"
    )
    body, content_type = mailgun_form(
        {"recipient": "support@mg.example.com", "body-mime": raw.decode(), "stripped-text": "body"}
    )
    parsed = _parsed("mailgun", body, content_type)
    assert (parsed.message_id, parsed.subject, parsed.text, parsed.reply_text) == (
        "raw-1@example.net",
        "Raw",
        "body",
        "body",
    )


def test_sendgrid_parsed_fields_honour_their_charsets() -> None:
    parsed = _parsed("sendgrid", *sendgrid_inbound("inbound_parsed.multipart"))
    assert (parsed.from_address, parsed.from_name) == ("renee@example.net", "Renée Lefèvre")
    assert parsed.subject == "Thé vert commandé"
    assert parsed.message_id == "CAL8reneeQ9x2w@mail.example.net"
    assert parsed.text == "Bonjour, où est mon thé vert ?"
    assert parsed.html is not None
    assert "où est mon thé" in parsed.html
    [attachment] = parsed.attachments
    assert (attachment.filename, attachment.content_type) == ("facture.pdf", "application/pdf")
    assert parsed.reply_text is None


def test_sendgrid_raw_message_is_the_message_itself() -> None:
    parsed = _parsed("sendgrid", *sendgrid_inbound("inbound_raw.multipart"))
    assert parsed.message_id == "CAL8reneeR7y3z@mail.example.net"
    assert parsed.in_reply_to == ("CAL8reneeQ9x2w@mail.example.net",)
    assert parsed.text.startswith("Il est arrivé, merci !")


def test_postmark_json_becomes_the_original_message() -> None:
    parsed = _parsed("postmark", postmark_json("inbound.json"), "application/json")
    assert (parsed.from_address, parsed.from_name) == ("jonas@example.net", "Jonas Berg")
    assert parsed.to == ("4f2c9d1e7b3a5c8d0e6f@inbound.postmarkapp.com",)
    assert parsed.message_id == "CAGjonas2077grinder@mail.example.net"
    assert parsed.subject == "Grinder arrived broken"
    assert parsed.date == dt.datetime(2026, 12, 3, 9, 20, 44, tzinfo=dt.UTC)
    [photo] = parsed.attachments
    assert (photo.filename, photo.content_type, photo.size) == ("hopper.jpg", "image/jpeg", 284)
    assert parsed.reply_text is None  # an empty StrippedTextReply says nothing
    reply = _parsed("postmark", postmark_json("inbound_reply.json"), "application/json")
    assert reply.in_reply_to == ("CAGjonas2077grinder@mail.example.net",)
    assert reply.references == ("CAGjonas2077grinder@mail.example.net",)
    assert reply.reply_text == "A replacement would be great, thanks."


def test_the_limits_apply_to_provider_messages_as_to_any_other() -> None:
    files = {f"attachment-{n}": (f"f{n}.txt", b"x", "text/plain") for n in range(1, 31)}
    body, content_type = mailgun_form(
        mailgun_route_fields(**{"attachment-count": "30"}), files=files
    )
    parsed = _parsed("mailgun", body, content_type)
    assert (len(parsed.attachments), parsed.attachments_skipped) == (20, 10)


def test_posts_without_a_message_are_refused_by_their_fields() -> None:
    body, content_type = mailgun_form({"recipient": "support@mg.example.com"})
    with pytest.raises(InvalidInput) as refused:
        _parsed("mailgun", body, content_type)
    assert refused.value.errors[0].loc == ("message-headers",)
    with pytest.raises(InvalidInput) as refused:
        _parsed("postmark", b'{"Subject": "x"}', "application/json")
    assert refused.value.errors[0].loc == ("FromFull",)
    with pytest.raises(InvalidInput):
        _parsed("sendgrid", b"--b\r\n\r\n--b--", "multipart/form-data; boundary=b")
    assert set(MAIL_READERS) == {"mailgun", "sendgrid", "postmark"}
