"""Keyset pagination with opaque cursors: stable under inserts, cheap at any depth."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

from crm_core.errors import FieldError, InvalidInput

DEFAULT_LIMIT = 50
MAX_LIMIT = 200


@dataclass(frozen=True)
class Page:
    items: list[dict[str, Any]]
    next: str | None

    def as_dict(self) -> dict[str, Any]:
        return {"items": self.items, "next": self.next}


def encode_cursor(key: list[Any]) -> str:
    """An opaque cursor for the sort key of the last item on a page."""
    return base64.urlsafe_b64encode(json.dumps(key).encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None, *, length: int) -> list[Any] | None:
    """The sort key inside ``cursor``; a cursor we did not make is a field error."""
    if not cursor:
        return None
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        key = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
    except (ValueError, binascii.Error, UnicodeError):
        key = None
    if not isinstance(key, list) or len(key) != length:
        raise InvalidInput([FieldError(("cursor",), "not a cursor this API returned")])
    return key


def parse_limit(raw: str | None) -> int:
    """The page size asked for, within 1..MAX_LIMIT."""
    if raw is None or raw == "":
        return DEFAULT_LIMIT
    if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= MAX_LIMIT:
        raise InvalidInput([FieldError(("limit",), f"must be an integer from 1 to {MAX_LIMIT}")])
    return int(raw)


def cursor_time(raw: Any) -> dt.datetime:
    """A timestamp taken out of a cursor (UTC when it carries no offset)."""
    try:
        moment = dt.datetime.fromisoformat(str(raw))
    except ValueError:
        raise InvalidInput([FieldError(("cursor",), "not a cursor this API returned")]) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)
