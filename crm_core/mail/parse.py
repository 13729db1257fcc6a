"""Parse an inbound e-mail, MIME bytes or provider JSON, into one ``ParsedEmail``.

Real-world mail is often broken: wrong charsets, bad encodings, missing
boundaries, 8-bit or absurdly long headers. Parsing salvages what it can and
records what it repaired in ``defects``; it raises only ``MalformedEmail``, for
input that is not an e-mail at all.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from email import policy
from email.message import Message
from email.parser import BytesParser
from typing import NamedTuple, TypeVar

from crm_core.mail.addresses import addresses_only, parse_address
from crm_core.mail.auto import auto_generated_reason, pick_signal_headers
from crm_core.mail.bodies import Bodies, add_attachment, collect_bodies
from crm_core.mail.bounces import find_bounce, is_delivery_report
from crm_core.mail.charsets import clean_text
from crm_core.mail.classify import read_case_token
from crm_core.mail.headers import HeaderReader, decode_words, parse_date
from crm_core.mail.html_text import sanitize_html, sanitized_to_text, stripped_text
from crm_core.mail.keys import json_message_key, message_key
from crm_core.mail.message_ids import (
    cap_references,
    normalize_message_id,
    parse_message_id_list,
)
from crm_core.mail.parsed import (
    Bounce,
    BouncedRecipient,
    MailLimits,
    MalformedEmail,
    ParsedEmail,
)
from crm_core.mail.structure import scan_structure
from crm_core.mail.transfer_encoding import lenient_b64decode
from crm_core.payloads.schemas import EmailPayload

MAX_SUBJECT_CHARS = 998
MAX_HEADER_VALUE_CHARS = 998
MAX_DEFECTS = 20
DEFAULT_LIMITS = MailLimits()
T = TypeVar("T")
# policy.default first; compat32 when its header parser recurses on a hostile header
# (e.g. thousands of nested comments); headers only when MIME parts nest thousands deep.
_PARSE_ATTEMPTS = ((policy.default, False), (policy.compat32, False), (policy.compat32, True))


class Envelope(NamedTuple):
    """The addressing and threading facts, from headers or from JSON fields."""

    from_address: str | None
    from_name: str | None
    to: tuple[str, ...]
    cc: tuple[str, ...]
    reply_to: tuple[str, ...]
    subject: str
    date: dt.datetime | None
    message_id: str | None
    in_reply_to: tuple[str, ...]
    references: tuple[str, ...]


def parse_rfc822(raw: bytes, *, limits: MailLimits = DEFAULT_LIMITS) -> ParsedEmail:
    """Parse a MIME message; raises ``MalformedEmail`` when ``raw`` is not an e-mail, or has
    more MIME parts or deeper nesting than ``limits`` allow (counted before any parse)."""
    message = _load(raw, limits=limits)
    headers = HeaderReader(message, max_chars=limits.max_header_chars)
    if not headers.names:
        raise MalformedEmail("no header fields: not an e-mail")
    defects = _stdlib_defects(message) + [
        f"header truncated: {n}" for n in sorted(headers.truncated)
    ]
    envelope = _header_envelope(headers, limits=limits)
    bodies = _salvage("body", lambda: collect_bodies(message, limits=limits), Bodies(), defects)
    signals = _signal_headers({name: headers.first(name) or "" for name in headers.names})
    bounce = _salvage(
        "bounce",
        lambda: find_bounce(
            message, failed_recipients_header=signals.get("X-Failed-Recipients"), limits=limits
        ),
        None,
        defects,
    )
    return _assemble(
        envelope,
        bodies,
        signals=signals,
        bounce=bounce,
        is_report=is_delivery_report(message),
        defects=defects,
        limits=limits,
        key=message_key(bytes(raw)),
    )


def parse_json(payload: EmailPayload, *, limits: MailLimits = DEFAULT_LIMITS) -> ParsedEmail:
    """Parse an e-mail delivered as JSON by a provider's inbound webhook."""
    signals = _signal_headers({str(name): clean_text(v) for name, v in payload.headers.items()})
    bodies = Bodies(
        texts=[payload.text] if payload.text and payload.text.strip() else [],
        htmls=[payload.html] if payload.html and payload.html.strip() else [],
    )
    _json_attachments(bodies, payload, limits=limits)
    return _assemble(
        _json_envelope(payload, limits=limits),
        bodies,
        signals=signals,
        bounce=_header_bounce(signals.get("X-Failed-Recipients")),
        is_report=False,
        defects=[],
        limits=limits,
        key=json_message_key(payload),
    )


def _header_envelope(headers: HeaderReader, *, limits: MailLimits) -> Envelope:
    from_name, from_address = parse_address(headers.first("from"))
    in_reply_to = parse_message_id_list(headers.first("in-reply-to"))
    # A duplicated References header is joined rather than dropped.
    references = parse_message_id_list(" ".join(headers.all("references")))
    return Envelope(
        from_address=from_address,
        from_name=from_name,
        to=addresses_only(headers.all("to")),
        cc=addresses_only(headers.all("cc")),
        reply_to=addresses_only(headers.all("reply-to")),
        subject=(headers.decoded("subject") or "")[:MAX_SUBJECT_CHARS],
        date=parse_date(headers.first("date")),
        message_id=normalize_message_id(headers.first("message-id")),
        in_reply_to=tuple(in_reply_to[: limits.max_references]),
        references=tuple(cap_references(references, limits.max_references)),
    )


def _json_envelope(payload: EmailPayload, *, limits: MailLimits) -> Envelope:
    from_name, from_address = parse_address(clean_text(payload.from_))
    in_reply_to = parse_message_id_list(payload.in_reply_to)
    references = parse_message_id_list(" ".join(payload.references))
    return Envelope(
        from_address=from_address,
        from_name=from_name,
        to=addresses_only([clean_text(value) for value in payload.to]),
        cc=addresses_only([clean_text(value) for value in payload.cc]),
        reply_to=addresses_only([clean_text(payload.reply_to or "")]),
        subject=decode_words(payload.subject)[:MAX_SUBJECT_CHARS],
        date=_as_utc(payload.date),
        message_id=normalize_message_id(payload.message_id),
        in_reply_to=tuple(in_reply_to[: limits.max_references]),
        references=tuple(cap_references(references, limits.max_references)),
    )


def _assemble(
    envelope: Envelope,
    bodies: Bodies,
    *,
    signals: dict[str, str],
    bounce: Bounce | None,
    is_report: bool,
    defects: list[str],
    limits: MailLimits,
    key: str,
) -> ParsedEmail:
    if envelope.from_address is None:
        defects.append("no valid From address")
    text, html = _text_and_html(bodies, limits=limits)
    reason = auto_generated_reason(signals, from_address=envelope.from_address, is_report=is_report)
    token = read_case_token(envelope.subject)
    return ParsedEmail(
        **envelope._asdict(),
        text=text,
        html=html,
        attachments=tuple(bodies.attachments),
        attachments_skipped=bodies.attachments_skipped,
        headers=signals,
        auto_generated=reason is not None,
        auto_reason=reason,
        bounce=bounce,
        case_token=token[0] if token else None,
        defects=tuple(dict.fromkeys(defects + bodies.defects))[:MAX_DEFECTS],
        case_tag=token[1] if token else None,
        message_key=key,
    )


def _signal_headers(values: dict[str, str]) -> dict[str, str]:
    picked = pick_signal_headers(values)
    return {name: decode_words(value)[:MAX_HEADER_VALUE_CHARS] for name, value in picked.items()}


def _load(raw: bytes, *, limits: MailLimits) -> Message:
    if not isinstance(raw, bytes | bytearray | memoryview):
        raise MalformedEmail(f"expected bytes, got {type(raw).__name__}")
    data = bytes(raw)
    if not data.strip():
        raise MalformedEmail("empty message")
    # Counted on the bytes first: the parser builds the whole tree before anything can.
    scan_structure(data, max_parts=limits.max_parts, max_depth=limits.max_depth)
    failure: Exception | None = None
    for parser_policy, headers_only in _PARSE_ATTEMPTS:
        try:
            return BytesParser(policy=parser_policy).parsebytes(data, headersonly=headers_only)
        except Exception as exc:  # the parsers are lenient; a failure is hostile input
            failure = exc
    raise MalformedEmail(f"unparseable message: {type(failure).__name__}") from failure


def _salvage(step: str, run: Callable[[], T], default: T, defects: list[str]) -> T:
    # One broken part must not cost the rest of the message: a step that fails
    # (the stdlib has failure modes on hostile MIME) yields its default.
    try:
        return run()
    except Exception as exc:
        defects.append(f"{step} not parsed: {type(exc).__name__}")
        return default


def _stdlib_defects(message: Message) -> list[str]:
    return sorted({type(defect).__name__ for defect in getattr(message, "defects", [])})


def _text_and_html(bodies: Bodies, *, limits: MailLimits) -> tuple[str, str | None]:
    """The text body (derived from the HTML when there is none) and the sanitized HTML."""
    html_source = "\n".join(bodies.htmls)[: limits.max_body_chars]
    html = sanitize_html(html_source) if html_source else None
    if html_source and html is None:
        bodies.defects.append("HTML nested too deeply: kept as text only")
    text = "\n\n".join(clean_text(text).strip() for text in bodies.texts).strip()
    if not text and html_source:
        text = sanitized_to_text(html) if html is not None else stripped_text(html_source)
    if len(text) > limits.max_body_chars:
        bodies.defects.append("text truncated")
        text = text[: limits.max_body_chars]
    return text, html


def _json_attachments(bodies: Bodies, payload: EmailPayload, *, limits: MailLimits) -> None:
    for attachment in payload.attachments:
        content = lenient_b64decode(attachment.content)
        add_attachment(
            bodies,
            filename=attachment.filename,
            content_type=attachment.content_type.lower(),
            content=content,
            inline=False,
            limits=limits,
        )


def _header_bounce(failed_recipients: str | None) -> Bounce | None:
    addresses = addresses_only([failed_recipients]) if failed_recipients else ()
    if not addresses:
        return None
    return Bounce(recipients=tuple(BouncedRecipient(address=a) for a in addresses))


def _as_utc(value: dt.datetime | None) -> dt.datetime | None:
    if value is None:
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC)
