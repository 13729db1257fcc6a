"""Payload validation: a stored body becomes a pydantic model or a list of field errors.

The intake checks a request with ``validate_payload``; a worker parses a stored
event into its kind's payload with ``parse_json_payload`` or
``check_rfc822`` (the same checks, raising ``InvalidInput``). Hostile bodies
(not UTF-8, not JSON, nested thousands deep, 5000-digit numbers) end up as
clean error lists here; nothing else in this module lets an exception out.
"""

from __future__ import annotations

import email.policy
from dataclasses import dataclass, field
from email.parser import BytesHeaderParser
from typing import Any, Generic, TypeVar

from pydantic import ValidationError

from crm_core.errors import FieldError, InvalidInput, first_line
from crm_core.ingestion.commands import order_command
from crm_core.leads.errors import InvalidField
from crm_core.leads.normalize import normalize_email
from crm_core.mail.parsed import MailLimits
from crm_core.mail.structure import TooComplex, scan_structure
from crm_core.payloads.json_body import DEFAULT_MAX_DEPTH, JSON_TYPE, json_document, media_type
from crm_core.payloads.schemas import (
    PAYLOAD_SCHEMAS,
    DealPayload,
    EmailPayload,
    LeadPayload,
    OrderPayload,
    Payload,
    TicketPayload,
)
from crm_core.sales.services import check_order_total

RFC822_TYPE = "message/rfc822"
DEFAULT_MAIL_LIMITS = MailLimits()
# Error messages are shown to senders; hostile input must not come back verbatim.
_MAX_MESSAGE = 300

P = TypeVar("P", bound=Payload)
P_co = TypeVar("P_co", bound=Payload, covariant=True)


@dataclass(frozen=True)
class Validated(Generic[P_co]):
    """The outcome of validation: a payload, or the errors that prevented one."""

    payload: P_co | None = None
    errors: list[FieldError] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.payload is not None and not self.errors


def accepted_content_types(kind: str) -> tuple[str, ...]:
    """The media types a kind accepts (without parameters)."""
    return (JSON_TYPE, RFC822_TYPE) if kind == "emails" else (JSON_TYPE,)


def validate_payload(
    kind: str,
    body: bytes,
    content_type: str,
    *,
    max_depth: int = DEFAULT_MAX_DEPTH,
    mail_limits: MailLimits = DEFAULT_MAIL_LIMITS,
) -> Validated[Payload]:
    """Validate ``body`` of ``kind`` sent as ``content_type`` (media type, parameters ignored).

    A raw e-mail is never parsed whole here: its MIME parts are counted on the
    bytes, and only its header block is read.
    """
    if kind not in PAYLOAD_SCHEMAS:
        return _refuse("kind", f"unknown kind {kind!r}"[:_MAX_MESSAGE])
    if media_type(content_type) not in accepted_content_types(kind):
        return _refuse("content_type", f"{kind} are not accepted as this media type")
    if media_type(content_type) == RFC822_TYPE:
        return _validate_rfc822(body, limits=mail_limits)
    return _validate_json(PAYLOAD_SCHEMAS[kind], body, max_depth=max_depth)


def parse_json_payload(
    kind: str, schema: type[P], body: bytes, content_type: str, *, max_depth: int
) -> P:
    """``body`` of ``kind`` as a ``schema`` payload; ``InvalidInput`` listing each problem.

    The checks are ``validate_payload``'s: a stored event is checked again because
    it may be a replay after the rules changed.
    """
    if media_type(content_type) != JSON_TYPE:
        raise InvalidInput(
            _refuse("content_type", f"{kind} are not accepted as this media type").errors
        )
    outcome = _validate_json(schema, body, max_depth=max_depth)
    if outcome.payload is None:
        raise InvalidInput(outcome.errors)
    return outcome.payload


def payload_from_document(schema: type[P], document: Any) -> P:
    """An already parsed JSON document as a ``schema`` payload, checked as ``parse_json_payload``
    checks a body; ``InvalidInput`` listing each problem."""
    outcome = _validate_document(schema, document)
    if outcome.payload is None:
        raise InvalidInput(outcome.errors)
    return outcome.payload


def check_rfc822(body: bytes, *, limits: MailLimits) -> None:
    """``InvalidInput`` when a raw message has no From header or too many MIME parts (as
    ``validate_payload`` says)."""
    outcome = _validate_rfc822(body, limits=limits)
    if outcome.payload is None:
        raise InvalidInput(outcome.errors)


def _refuse(field_name: str, message: str, type_: str = "value_error") -> Validated[Any]:
    return Validated(errors=[FieldError((field_name,), message, type_)])


def _validate_json(schema: type[P], body: bytes, *, max_depth: int) -> Validated[P]:
    document = json_document(body, max_depth=max_depth)
    if isinstance(document, FieldError):
        return Validated(errors=[document])
    return _validate_document(schema, document)


def _validate_document(schema: type[P], document: Any) -> Validated[P]:
    if not isinstance(document, dict):
        return _refuse("body", "the body must be a JSON object", "model_type")
    try:
        payload = schema.model_validate(document)
    except ValidationError as exc:
        return Validated(errors=[_field_error(err) for err in exc.errors(include_input=False)])
    except (ValueError, RecursionError) as exc:
        return _refuse("body", first_line(str(exc), limit=_MAX_MESSAGE))
    extra = _address_errors(payload)
    if isinstance(payload, OrderPayload):
        extra += _order_total_errors(payload)
    return Validated(errors=extra) if extra else Validated(payload=payload)


def _field_error(error: Any) -> FieldError:
    loc = tuple(error.get("loc", ())) or ("body",)
    return FieldError(loc, str(error.get("msg", "invalid"))[:_MAX_MESSAGE], error.get("type", ""))


def _addresses(payload: Payload) -> list[tuple[tuple[str, ...], str | None]]:
    """The e-mail addresses of a payload that the workers match people by, with their places."""
    if isinstance(payload, TicketPayload):
        return [(("requester", "email"), payload.requester.email)]
    if isinstance(payload, LeadPayload | OrderPayload | DealPayload):
        return [(("email",), payload.email)]
    return []


def _address_errors(payload: Payload) -> list[FieldError]:
    """Addresses the workers would refuse (email-validator, no DNS) are refused here already."""
    errors = []
    for loc, address in _addresses(payload):
        if address:
            try:
                normalize_email(address)
            except InvalidField as exc:
                errors.append(FieldError(loc, exc.message[:_MAX_MESSAGE], "value_error"))
    return errors


def _order_total_errors(order: OrderPayload) -> list[FieldError]:
    """An order's ``total``, when given, must equal the sum of its lines."""
    try:
        check_order_total(order_command(order))
    except InvalidInput as exc:
        return exc.errors
    return []


def _validate_rfc822(body: bytes, *, limits: MailLimits) -> Validated[EmailPayload]:
    """A raw message needs a From header and bounded MIME parts; the rest is the pipeline's."""
    try:
        scan_structure(body, max_parts=limits.max_parts, max_depth=limits.max_depth)
    except TooComplex as exc:
        return _refuse("body", f"refused before parsing: {exc}", "too_complex")
    try:
        # Only the header block: compat32 reads a malformed header as the text it is.
        message = BytesHeaderParser(policy=email.policy.compat32).parsebytes(body)
        fields: dict[str, Any] = {
            "from": str(message.get("From", "")).strip(),
            "to": [str(v) for v in message.get_all("To", [])],
            "cc": [str(v) for v in message.get_all("Cc", [])],
            "subject": str(message.get("Subject", "")),
            "message_id": _optional(message.get("Message-ID")),
            "in_reply_to": _optional(message.get("In-Reply-To")),
            "references": str(message.get("References", "")).split(),
        }
    except Exception as exc:  # the stdlib parser is lenient; anything it raises is bad input
        return _refuse("body", f"not an RFC 5322 message: {type(exc).__name__}")
    if not fields["from"]:
        return _refuse("from", "an e-mail needs a From header", "missing")
    try:
        return Validated(payload=EmailPayload.model_validate(fields))
    except ValidationError as exc:
        return Validated(errors=[_field_error(err) for err in exc.errors(include_input=False)])


def _optional(value: Any) -> str | None:
    return str(value).strip() or None if value is not None else None
