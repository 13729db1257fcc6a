"""Small readers the e-mail providers' delivery-event mappings share."""

from __future__ import annotations

import datetime as dt
from typing import Any

from crm_core.errors import FieldError, InvalidInput
from crm_core.payloads.json_body import parse_json_body

MAX_REASON = 500
MAX_ID = 255


def json_of(body: bytes, *, max_depth: int) -> Any:
    """The stored body's JSON; ``InvalidInput`` when it is not JSON."""
    try:
        return parse_json_body(body, max_depth=max_depth)
    except ValueError as exc:
        raise InvalidInput([FieldError(("body",), str(exc), "json_invalid")]) from None


def document_of(body: bytes, *, max_depth: int) -> dict[str, Any]:
    """The stored body's JSON object; ``InvalidInput`` when it is not one."""
    document = json_of(body, max_depth=max_depth)
    if not isinstance(document, dict):
        raise InvalidInput([FieldError(("body",), "the body must be a JSON object", "model_type")])
    return document


def bounded(value: str, limit: int = MAX_ID) -> str:
    return value[:limit]


def reason_of(*pieces: Any) -> str | None:
    """The provider's own words about an event, joined and bounded; ``None`` when it has none."""
    words = [
        " ".join(str(piece).split())
        for piece in pieces
        if isinstance(piece, str | int) and not isinstance(piece, bool)
    ]
    return "; ".join(word for word in dict.fromkeys(words) if word)[:MAX_REASON] or None


def timestamp_of(value: Any) -> dt.datetime | None:
    """A Unix time (seconds, maybe fractional) as a UTC datetime; ``None`` when it is not one."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        return dt.datetime.fromtimestamp(value, tz=dt.UTC)
    except (OverflowError, OSError, ValueError):
        return None


def iso_time_of(value: Any) -> dt.datetime | None:
    """An ISO 8601 time (Postmark's, with up to seven decimals) as UTC; ``None`` otherwise."""
    if not isinstance(value, str) or len(value) > 64:
        return None
    text = value.strip().replace("Z", "+00:00")
    head, dot, rest = text.partition(".")
    if dot:  # Python reads at most six decimals
        digits = len(rest) - len(rest.lstrip("0123456789"))
        text = f"{head}.{rest[: min(digits, 6)]}{rest[digits:]}"
    try:
        when = dt.datetime.fromisoformat(text)
    except ValueError:
        return None
    return when.astimezone(dt.UTC) if when.tzinfo else when.replace(tzinfo=dt.UTC)
