"""Outbound messages: the headers each kind of mail carries, and no header injection."""

from __future__ import annotations

from email import message_from_bytes, policy
from typing import Any

import pytest

from crm_core.mail_transport.messages import (
    AutoSubmitted,
    InvalidMessageError,
    OutboundMail,
    build_message,
    envelope_recipients,
    envelope_sender,
    new_message_id,
    sender_domain,
)


def mail(**changes: Any) -> OutboundMail:
    fields: dict[str, Any] = {
        "sender": "Acme CRM <crm@acme.example>",
        "to": "Ann Example <ann@example.org>",
        "subject": "Spring news",
        "text": "Hello Ann",
    }
    fields.update(changes)
    return OutboundMail(**fields)


def reparsed(message: Any) -> Any:
    return message_from_bytes(message.as_bytes(), policy=policy.default)


def test_campaign_mail_carries_one_click_unsubscribe_headers() -> None:
    url = "https://crm.acme.example/unsubscribe/abc.def"
    message = reparsed(build_message(mail(unsubscribe_url=url, html="<p>Hello</p>")))
    assert message["List-Unsubscribe"] == f"<{url}>"
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert message["Auto-Submitted"] is None
    assert message.get_content_type() == "multipart/alternative"
    assert message.get_body(("plain",)).get_content().strip() == "Hello Ann"
    assert message.get_body(("html",)).get_content().strip() == "<p>Hello</p>"


def test_plain_mail_is_a_single_text_part_without_list_headers() -> None:
    message = reparsed(build_message(mail()))
    assert message.get_content_type() == "text/plain"
    assert message["List-Unsubscribe"] is None
    assert message["Date"] is not None
    assert str(message["From"]) == "Acme CRM <crm@acme.example>"
    assert str(message["To"]) == "Ann Example <ann@example.org>"


@pytest.mark.parametrize(
    ("kind", "value"),
    [(AutoSubmitted.GENERATED, "auto-generated"), (AutoSubmitted.REPLIED, "auto-replied")],
)
def test_automatic_mail_says_so(kind: AutoSubmitted, value: str) -> None:
    assert build_message(mail(auto_submitted=kind))["Auto-Submitted"] == value


def test_message_ids_are_fresh_and_on_our_domain() -> None:
    first = build_message(mail())["Message-ID"]
    second = build_message(mail())["Message-ID"]
    assert first != second
    assert first.startswith("<")
    assert first.endswith("@acme.example>")
    assert build_message(mail(message_id="<given@acme.example>"))["Message-ID"] == (
        "<given@acme.example>"
    )
    assert new_message_id("crm@b.example").endswith("@b.example>")
    assert sender_domain("no-domain") == "localhost"


def test_replies_thread_with_in_reply_to_and_references() -> None:
    message = build_message(
        mail(in_reply_to="<root@x.example>", references=["<root@x.example>", "<r2@x.example>"])
    )
    assert message["In-Reply-To"] == "<root@x.example>"
    assert message["References"] == "<root@x.example> <r2@x.example>"


def test_non_ascii_is_encoded_so_the_message_is_seven_bit() -> None:
    message = build_message(mail(subject="Grüße, Zoë", text="Schöne Grüße", html="<p>Zoë</p>"))
    raw = message.as_bytes()
    assert raw.isascii()
    parsed = reparsed(message)
    assert parsed["Subject"] == "Grüße, Zoë"
    assert parsed.get_body(("plain",)).get_content().strip() == "Schöne Grüße"


@pytest.mark.parametrize(
    "changes",
    [
        {"subject": "Hi\r\nBcc: victim@example.com"},
        {"subject": "Hi\nX-Injected: 1"},
        {"subject": "Hi\rX-Injected: 1"},
        {"to": "ann@example.org\r\nBcc: victim@example.com"},
        {"sender": "crm@acme.example\nBcc: victim@example.com"},
        {"unsubscribe_url": "https://x/u\r\nBcc: victim@example.com"},
        {"in_reply_to": "<a@b>\r\nBcc: victim@example.com"},
        {"references": ["<a@b>\nBcc: victim@example.com"]},
        {"message_id": "<a@b>\r\nBcc: victim@example.com"},
        {"reply_to": "x@y.example\r\nBcc: victim@example.com"},
    ],
)
def test_a_line_break_in_any_header_value_is_refused(changes: dict[str, Any]) -> None:
    with pytest.raises(InvalidMessageError, match="linefeed or carriage return"):
        build_message(mail(**changes))


@pytest.mark.parametrize("to", ["not an address", "", "@example.org", "Ann <>"])
def test_a_recipient_without_an_address_is_refused(to: str) -> None:
    with pytest.raises(InvalidMessageError):
        build_message(mail(to=to))


def test_envelope_addresses_are_bare() -> None:
    message = build_message(mail(to="Ann <ann@example.org>, bob@example.org"))
    assert envelope_sender(message) == "crm@acme.example"
    assert envelope_recipients(message) == ["ann@example.org", "bob@example.org"]


@pytest.mark.parametrize(
    "sender",
    ["Acme CRM <crm@acme.example>\r\nBcc: victim@example.com", "not an address", ""],
)
def test_a_bad_sender_is_refused_every_time_not_only_the_first(sender: str) -> None:
    # The parsed sender is kept between messages; a refusal must not be.
    for _ in range(2):
        with pytest.raises(InvalidMessageError):
            build_message(mail(sender=sender))


def test_messages_from_one_sender_share_nothing_but_the_sender() -> None:
    first = build_message(mail(to="ann@example.org", subject="One"))
    second = build_message(mail(to="bob@example.org", subject="Two", reply_to="help@acme.example"))
    assert [str(first["To"]), str(first["Subject"]), first["Reply-To"]] == [
        "ann@example.org",
        "One",
        None,
    ]
    assert [str(second["To"]), str(second["Subject"]), str(second["Reply-To"])] == [
        "bob@example.org",
        "Two",
        "help@acme.example",
    ]
    assert reparsed(first)["From"].addresses[0].addr_spec == "crm@acme.example"
    assert first["Message-ID"] != second["Message-ID"]
    # A header set twice is still refused, as the standard policy does.
    with pytest.raises(ValueError, match="at most 1 Subject"):
        second["Subject"] = "Again"


# Real ids are often longer than a header line: Gmail's, Outlook's.
LONG_ID = "<CAFx9v8pQm2nJ0=" + "a1b2c3d4e5" * 5 + "@mail.gmail.com>"
OTHER_ID = "<PAXP193MB2314C6F90A60DA909597069AA7802@PAXP193MB2314.EURP193.PROD.OUTLOOK.COM>"
LONG_URL = "https://crm.acme.example/unsubscribe/eyJrIjo0MiwiYyI6N30.awablg.wouGGZ_goiMBJSP_fbbIWg"


def header_lines(raw: bytes, name: bytes) -> list[bytes]:
    """The physical lines of header ``name`` in ``raw``: its first line and continuations."""
    lines = raw.split(b"\r\n\r\n", 1)[0].split(b"\r\n")
    start = next(i for i, line in enumerate(lines) if line.startswith(name + b":"))
    end = start + 1
    while end < len(lines) and lines[end][:1] in (b" ", b"\t"):
        end += 1
    return lines[start:end]


@pytest.mark.parametrize("wire", [policy.SMTP, policy.SMTPUTF8], ids=["smtp", "smtputf8"])
def test_long_message_ids_and_urls_go_out_as_written_never_as_encoded_words(wire: Any) -> None:
    message = build_message(
        mail(in_reply_to=LONG_ID, references=[OTHER_ID, LONG_ID], unsubscribe_url=LONG_URL)
    )
    raw = message.as_bytes(policy=wire)
    assert b"=?" not in raw.split(b"\r\n\r\n", 1)[0]
    assert header_lines(raw, b"In-Reply-To") == [b"In-Reply-To: " + LONG_ID.encode()]
    assert header_lines(raw, b"List-Unsubscribe") == [f"List-Unsubscribe: <{LONG_URL}>".encode()]
    # Several ids fold between ids, each whole on its own line.
    assert header_lines(raw, b"References") == [
        b"References: " + OTHER_ID.encode(),
        b" " + LONG_ID.encode(),
    ]
    parsed = message_from_bytes(raw, policy=policy.default)
    assert parsed["References"] == f"{OTHER_ID} {LONG_ID}"


def test_short_references_stay_on_one_line() -> None:
    raw = build_message(mail(references=["<a@x>", "<b@y>"])).as_bytes(policy=policy.SMTP)
    assert header_lines(raw, b"References") == [b"References: <a@x> <b@y>"]
