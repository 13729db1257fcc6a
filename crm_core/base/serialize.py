"""Entities as plain JSON-ready dicts: every column, linked entities as ``<entity>_id``."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from sqlalchemy import inspect

# Columns that are internal matching keys or secrets, never shown.
HIDDEN = {"name_key", "email_normalized", "key_hash", "secret", "body"}


def plain(value: Any) -> Any:
    """A JSON-ready value: decimals as strings (exact), times in ISO 8601."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    return value


def to_dict(obj: object, *, hide: set[str] | frozenset[str] = frozenset()) -> dict[str, Any]:
    """Every mapped column of ``obj`` except the hidden ones."""
    mapper = inspect(type(obj))
    return {
        attr.key: plain(getattr(obj, attr.key))
        for attr in mapper.column_attrs
        if attr.key not in HIDDEN and attr.key not in hide
    }
