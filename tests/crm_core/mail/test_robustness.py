"""parse_rfc822 survives anything: it returns a storable ParsedEmail or raises MalformedEmail."""

from __future__ import annotations

import json
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crm_core.mail import MailLimits, MalformedEmail, ParsedEmail, parse_json, parse_rfc822
from crm_core.payloads.schemas import EmailPayload

FIXTURES = Path(__file__).parents[2] / "fixtures" / "emails"
# The absurdly long one is left out only to keep each example fast.
SAMPLES = [
    path.read_bytes() for path in sorted(FIXTURES.glob("*.eml")) if path.stat().st_size < 20_000
]
LIMITS = MailLimits(max_attachments=3, max_attachment_bytes=2000, max_references=5)
HEADER_NAMES = [
    "From", "To", "Cc", "Reply-To", "Subject", "Date", "Message-ID", "In-Reply-To",
    "References", "Content-Type", "Content-Transfer-Encoding", "Content-Disposition",
    "MIME-Version", "Auto-Submitted", "Precedence", "List-Id", "Return-Path", "X-Failed-Recipients",
]  # fmt: skip
FRAGMENTS = [
    b"=?utf-8?q?", b"=?x-unknown?b?", b"?=", b"<", b">", b"@", b'"', b",", b";", b":", b"\\",
    b"multipart/mixed; boundary=", b"multipart/report; report-type=delivery-status",
    b"message/rfc822", b"message/delivery-status", b"text/html", b"charset=", b"base64",
    b"quoted-printable", b"filename*=utf-8''", b"\r\n", b"\n", b"\r\n ", b"\xff\xfe", b"\xc3",
    b"--", b"=", b"\x00", b"(" * 3000, b"<div>" * 500, b"<a " * 50,
]  # fmt: skip


def _assert_storable(parsed: ParsedEmail) -> None:
    texts = [parsed.subject, parsed.text, parsed.html or "", parsed.from_name or ""]
    texts += [
        *parsed.to,
        *parsed.cc,
        *parsed.reply_to,
        *parsed.references,
        *parsed.headers.values(),
    ]
    for text in texts:
        text.encode("utf-8")
        assert "\x00" not in text
    assert len(parsed.attachments) <= LIMITS.max_attachments
    assert len(parsed.references) <= LIMITS.max_references
    json.dumps(parsed.to_json_dict())


def _parse_or_refuse(raw: bytes) -> None:
    try:
        parsed = parse_rfc822(raw, limits=LIMITS)
    except MalformedEmail:
        return
    _assert_storable(parsed)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=4000))
def test_arbitrary_bytes(raw: bytes) -> None:
    _parse_or_refuse(raw)


header_value = st.lists(
    st.one_of(st.sampled_from(FRAGMENTS), st.binary(max_size=20)), max_size=12
).map(b"".join)
header = st.tuples(st.sampled_from(HEADER_NAMES), header_value).map(
    lambda pair: pair[0].encode() + b": " + pair[1]
)


@settings(max_examples=300, deadline=None)
@given(st.lists(header, min_size=1, max_size=15), header_value, st.sampled_from([b"\r\n", b"\n"]))
def test_header_soup(headers: list[bytes], body: bytes, newline: bytes) -> None:
    _parse_or_refuse(newline.join(headers) + newline + newline + body)


mutation = st.tuples(
    st.sampled_from(["insert", "delete", "replace", "truncate", "repeat"]),
    st.floats(min_value=0, max_value=1),
    st.one_of(st.sampled_from(FRAGMENTS), st.binary(min_size=1, max_size=8)),
)


def _mutate(raw: bytes, mutations: list[tuple[str, float, bytes]]) -> bytes:
    for op, where, data in mutations:
        at = int(where * len(raw))
        if op == "insert":
            raw = raw[:at] + data + raw[at:]
        elif op == "delete":
            raw = raw[:at] + raw[at + len(data) * 4 :]
        elif op == "replace":
            raw = raw[:at] + data + raw[at + len(data) :]
        elif op == "truncate":
            raw = raw[:at]
        else:
            raw = raw[:at] + raw[at : at + 200] * 3 + raw[at:]
    return raw


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(SAMPLES), st.lists(mutation, min_size=1, max_size=6))
def test_mutated_fixtures(raw: bytes, mutations: list[tuple[str, float, bytes]]) -> None:
    _parse_or_refuse(_mutate(raw, mutations))


def test_every_sample_parses_unmutated() -> None:
    assert len(SAMPLES) >= 20
    for raw in SAMPLES:
        _assert_storable(parse_rfc822(raw, limits=LIMITS))


json_text = st.text(max_size=200) | st.sampled_from([f.decode("latin-1")[:990] for f in FRAGMENTS])


@settings(max_examples=200, deadline=None)
@given(
    st.fixed_dictionaries(
        {"from": json_text.filter(lambda value: bool(value.strip()))},
        optional={
            "to": st.lists(json_text, max_size=3),
            "subject": json_text,
            "text": json_text,
            "html": json_text,
            "message_id": json_text,
            "in_reply_to": json_text,
            "references": st.lists(json_text, max_size=3),
            "headers": st.dictionaries(st.sampled_from(HEADER_NAMES), json_text, max_size=3),
            "attachments": st.lists(st.fixed_dictionaries({"content": json_text}), max_size=4),
        },
    )
)
def test_json_payloads(data: dict[str, object]) -> None:
    _assert_storable(parse_json(EmailPayload.model_validate(data), limits=LIMITS))
