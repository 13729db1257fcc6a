"""Where a person is mentioned: the needles their data gives, in SQL and in JSON values.

A needle is a lower-cased address, name or phone number (and its JSON-escaped spelling, as
JSON columns store non-ASCII text). SQL looks for it as a substring of a lower-cased text
column; ``redact`` replaces every string value that holds one.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from sqlalchemy import ColumnElement, Text, cast, false, func, or_
from sqlalchemy.orm import Session

ERASED = "<erased>"
# Shorter names or numbers would match unrelated text ("Al", "12").
MIN_NAME = 4
MIN_PHONE_DIGITS = 6


def spellings(values: Iterable[str | None]) -> set[str]:
    """Each value lower-cased, and as JSON writes it inside a string."""
    found: set[str] = set()
    for value in values:
        if not value or not value.strip():
            continue
        lowered = value.strip().lower()
        found.add(lowered)
        found.add(json.dumps(lowered)[1:-1])
    return found


def name_needles(names: Iterable[str | None]) -> set[str]:
    return spellings(n for n in names if n and len(n.strip()) >= MIN_NAME)


def phone_needles(phones: Iterable[str | None]) -> set[str]:
    """A number as given, as stored (E.164) and as its bare digits."""
    found: set[str] = set()
    for phone in phones:
        if not phone:
            continue
        digits = "".join(c for c in phone if c.isdigit())
        if len(digits) < MIN_PHONE_DIGITS:
            continue
        found |= spellings([phone, digits])
    return found


def as_text(column: Any) -> ColumnElement[str]:
    """A text or JSON column as lower-cased text."""
    return func.lower(cast(column, Text))


def bytes_as_text(session: Session, column: Any) -> ColumnElement[str]:
    """A binary column (an inbox body) as lower-cased text, whatever bytes it holds."""
    if session.get_bind().dialect.name == "postgresql":
        # ``escape`` never fails on invalid UTF-8; ASCII (every address) stays as it is.
        return func.lower(func.encode(column, "escape"))
    return func.lower(cast(column, Text))


def mentions(session: Session, text: ColumnElement[str], needles: Iterable[str]) -> Any:
    """SQL: ``text`` holds one of ``needles`` (no wildcards: ``_`` and ``%`` are literal)."""
    find = func.strpos if session.get_bind().dialect.name == "postgresql" else func.instr
    tests = [find(text, needle) > 0 for needle in sorted(set(needles))]
    return or_(*tests) if tests else false()


def holds(value: str, needles: Iterable[str]) -> bool:
    lowered = value.lower()
    return any(needle in lowered for needle in needles)


def redact(value: Any, needles: frozenset[str] | set[str]) -> Any:
    """``value`` (JSON) with every string that holds a needle replaced by ``ERASED``."""
    if isinstance(value, str):
        return ERASED if holds(value, needles) else value
    if isinstance(value, list):
        return [redact(item, needles) for item in value]
    if isinstance(value, dict):
        return {key: redact(item, needles) for key, item in value.items()}
    return value
