"""parse_rfc822 and parse_json beyond the fixture table: limits, refusals, equivalence."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
from email.message import EmailMessage

import pytest

from crm_core.config import Settings
from crm_core.mail import MailLimits, MalformedEmail, parse_json, parse_rfc822
from crm_core.payloads.schemas import EmailPayload


def _with_attachments(sizes: list[int]) -> bytes:
    message = EmailMessage()
    message["From"] = "a@x.example"
    message["To"] = "b@x.example"
    message["Subject"] = "files"
    message.set_content("see attached")
    for index, size in enumerate(sizes):
        message.add_attachment(
            bytes([index]) * size,
            maintype="application",
            subtype="octet-stream",
            filename=f"f{index}",
        )
    return message.as_bytes()


@pytest.mark.parametrize(
    ("limits", "recorded", "skipped"),
    [
        (MailLimits(), ["f0", "f1", "f2", "f3"], 0),
        (MailLimits(max_attachments=2), ["f0", "f1"], 2),
        (MailLimits(max_attachment_bytes=250), ["f0", "f1", "f3"], 1),
        (MailLimits(max_attachments=0), [], 4),
    ],
)
def test_attachment_caps_count_what_they_skip(
    limits: MailLimits, recorded: list[str], skipped: int
) -> None:
    parsed = parse_rfc822(_with_attachments([100, 100, 100, 10]), limits=limits)
    assert [attachment.filename for attachment in parsed.attachments] == recorded
    assert parsed.attachments_skipped == skipped
    assert parsed.text == "see attached"


def test_attachment_records_size_and_sha256_of_the_decoded_content() -> None:
    parsed = parse_rfc822(_with_attachments([300]))
    (attachment,) = parsed.attachments
    assert attachment.size == 300
    assert attachment.sha256 == hashlib.sha256(b"\x00" * 300).hexdigest()
    assert attachment.content_type == "application/octet-stream"


def test_body_is_capped() -> None:
    raw = b"From: a@x.example\r\n\r\n" + b"word " * 1000
    parsed = parse_rfc822(raw, limits=MailLimits(max_body_chars=100))
    assert len(parsed.text) == 100
    assert "text truncated" in parsed.defects


@pytest.mark.parametrize(
    "raw",
    [b"", b"   \r\n\t ", b"\r\n\r\njust a body", b"no header line at all\r\nsecond line"],
)
def test_input_that_is_not_an_email_is_refused(raw: bytes) -> None:
    with pytest.raises(MalformedEmail):
        parse_rfc822(raw)


def test_non_bytes_input_is_refused() -> None:
    with pytest.raises(MalformedEmail):
        parse_rfc822("From: a@x.example\r\n\r\nhi")  # type: ignore[arg-type]


def test_a_date_without_zone_is_utc() -> None:
    parsed = parse_rfc822(b"From: a@x.example\r\nDate: Mon, 2 Mar 2026 10:00:00 -0000\r\n\r\nhi")
    assert parsed.date == dt.datetime(2026, 3, 2, 10, tzinfo=dt.UTC)


def test_mime_and_json_forms_of_one_email_parse_alike() -> None:
    raw = (
        b"From: Alice <Alice@Example.com>\r\nTo: support@acme.test\r\nCc: c@x.example\r\n"
        b"Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe?= [Case #9]\r\nMessage-ID: <m1@x>\r\n"
        b"In-Reply-To: <p@x>\r\nReferences: <r@x> <p@x>\r\n"
        b"Date: Mon, 02 Mar 2026 10:00:00 +0000\r\nAuto-Submitted: auto-replied\r\n"
        b"Content-Type: text/plain; charset=utf-8\r\n\r\nHello there\r\n"
    )
    payload = EmailPayload.model_validate(
        {
            "from": "Alice <Alice@Example.com>",
            "to": ["support@acme.test"],
            "cc": ["c@x.example"],
            "subject": "Grüße [Case #9]",
            "message_id": "<m1@x>",
            "in_reply_to": "<p@x>",
            "references": ["<r@x>", "<p@x>"],
            "date": "2026-03-02T10:00:00Z",
            "headers": {"Auto-Submitted": "auto-replied"},
            "text": "Hello there\n",
        }
    )
    # Alike in everything but the key of their bytes, which differ.
    assert dataclasses.replace(parse_json(payload), message_key=None) == dataclasses.replace(
        parse_rfc822(raw), message_key=None
    )


def test_limits_from_settings() -> None:
    settings = Settings(max_attachments=3, max_attachment_bytes=1000)
    assert MailLimits.from_settings(settings) == MailLimits(
        max_attachments=3, max_attachment_bytes=1000
    )


def test_support_addresses_setting_is_comma_separated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRM_SUPPORT_ADDRESSES", " Support@Acme.test, help@acme.test,, ")
    assert Settings().support_addresses == {"support@acme.test", "help@acme.test"}
    monkeypatch.delenv("CRM_SUPPORT_ADDRESSES")
    assert Settings().support_addresses == frozenset()


def _nested_multiparts(depth: int) -> bytes:
    raw = b"From: a@x.example\r\nContent-Type: multipart/mixed; boundary=b0\r\n\r\n"
    for level in range(depth):
        raw += b"--b%d\r\nContent-Type: multipart/mixed; boundary=b%d\r\n\r\n" % (level, level + 1)
    return raw + b"--b%d\r\nContent-Type: text/plain\r\n\r\ndeep text\r\n" % depth


def test_parts_nested_thousands_deep_are_refused_before_parsing() -> None:
    with pytest.raises(MalformedEmail, match="nested deeper than 20 levels"):
        parse_rfc822(_nested_multiparts(3000))


def test_parts_nested_within_the_limit_keep_headers_and_text() -> None:
    parsed = parse_rfc822(_nested_multiparts(15))
    assert parsed.from_address == "a@x.example"
    assert "deep text" in parsed.text


def test_html_nested_thousands_deep_is_kept_as_text_only() -> None:
    raw = b"From: a@x.example\r\nContent-Type: text/html\r\n\r\n" + b"<div>" * 50_000 + b"hi"
    parsed = parse_rfc822(raw)
    assert parsed.html is None
    assert parsed.text == "hi"
    assert "HTML nested too deeply: kept as text only" in parsed.defects


@pytest.mark.parametrize("header", [b"To", b"From", b"Message-ID", b"Date", b"Content-Type"])
def test_thousands_of_nested_comments_in_a_header_are_survived(header: bytes) -> None:
    raw = b"From: a@x.example\r\n" + header + b": " + b"(" * 30_000 + b"\r\n\r\nbody"
    parsed = parse_rfc822(raw)
    assert parsed.to == ()
    assert parsed.message_id is None
