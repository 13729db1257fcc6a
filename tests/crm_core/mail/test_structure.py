"""MIME bombs are counted on the bytes and refused before the standard library builds a tree."""

from __future__ import annotations

from email import policy
from email.parser import BytesParser
from pathlib import Path

import pytest

from crm_core.ingestion.validation import validate_payload
from crm_core.mail import MailLimits, MalformedEmail, parse_rfc822
from crm_core.mail import parts as mime_parts
from crm_core.mail.structure import TooComplex, scan_structure

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "emails"
HEAD = b"From: a@x.example\r\nTo: support@acme.test\r\nSubject: bomb\r\n"


def empty_parts(count: int) -> bytes:
    """``count`` empty parts: 40,000 of them are 280 KB."""
    body = b"--b\r\n\r\n" * count + b"--b--\r\n"
    return HEAD + b"Content-Type: multipart/mixed; boundary=b\r\n\r\n" + body


def status_blocks(count: int) -> bytes:
    """A delivery-status part of ``count`` field blocks: the stdlib makes one part of each."""
    body = b"Final-Recipient: rfc822; x@y.example\r\n\r\n" * count
    return HEAD + b"Content-Type: message/delivery-status\r\n\r\n" + body


def nested_messages(depth: int) -> bytes:
    return HEAD + b"Content-Type: message/rfc822\r\n\r\n" * depth + b"From: b@x.example\r\n\r\nhi"


BOMBS = {
    "40000 empty parts": (empty_parts(40_000), "more than 500 MIME parts"),
    "40000 status blocks": (status_blocks(40_000), "more than 500 MIME parts"),
    "messages 5000 deep": (nested_messages(5000), "nested deeper than 20 levels"),
}


@pytest.mark.parametrize("name", sorted(p.name for p in FIXTURES.glob("*.eml")))
def test_the_scan_counts_parts_and_depth_as_the_parser_makes_them(name: str) -> None:
    raw = (FIXTURES / name).read_bytes()
    tree = BytesParser(policy=policy.default).parsebytes(raw)
    walked = list(mime_parts.walk(tree, max_parts=10_000, max_depth=1_000))
    found = scan_structure(raw, max_parts=10_000, max_depth=1_000)
    assert (found.parts, found.depth) == (len(walked), max(depth for _, depth in walked))


@pytest.mark.parametrize("name", sorted(BOMBS))
def test_a_mime_bomb_is_refused_by_the_parser(name: str) -> None:
    raw, reason = BOMBS[name]
    with pytest.raises(MalformedEmail, match=reason):
        parse_rfc822(raw)


@pytest.mark.parametrize("name", sorted(BOMBS))
def test_a_mime_bomb_fails_validation_naming_the_body(name: str) -> None:
    raw, reason = BOMBS[name]
    outcome = validate_payload("emails", raw, "message/rfc822")
    assert not outcome.ok
    [error] = outcome.errors
    assert error.loc == ("body",)
    assert reason in error.msg


def test_the_limits_are_the_configured_ones() -> None:
    raw = empty_parts(30)
    assert validate_payload("emails", raw, "message/rfc822").ok
    tight = MailLimits(max_parts=10)
    assert not validate_payload("emails", raw, "message/rfc822", mail_limits=tight).ok
    with pytest.raises(TooComplex):
        parse_rfc822(raw, limits=tight)
    assert parse_rfc822(raw).from_address == "a@x.example"


def test_delimiters_of_outer_parts_close_inner_ones() -> None:
    raw = (
        HEAD + b"Content-Type: multipart/mixed; boundary=outer\r\n\r\n"
        b"--outer\r\nContent-Type: multipart/alternative; boundary=inner\r\n\r\n"
        b"--inner\r\n\r\na\r\n"  # the inner multipart is never closed
        b"--outer\r\n\r\nb\r\n--outer--\r\n--inner\r\n\r\nnot a part\r\n"
    )
    found = scan_structure(raw, max_parts=100, max_depth=10)
    tree = BytesParser(policy=policy.default).parsebytes(raw)
    assert found.parts == len(list(mime_parts.walk(tree, max_parts=100, max_depth=10))) == 4


def test_dash_lines_that_delimit_nothing_are_not_parts() -> None:
    raw = HEAD + b"Content-Type: multipart/mixed; boundary=b\r\n\r\n" + b"--x\r\n" * 50_000
    assert scan_structure(raw, max_parts=10, max_depth=10).parts == 1
