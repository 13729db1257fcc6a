"""Errors services raise, which the outer layers map to statuses and answers."""

from __future__ import annotations

import traceback
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any


def first_line(text: str, *, limit: int = 300) -> str:
    """The first non-blank line of ``text`` (stripped), at most ``limit`` characters."""
    return (text.strip().splitlines() or [""])[0][:limit]


def error_line(exc: BaseException, *, limit: int = 300) -> str:
    """``Type: first line of the message`` (the type alone without one), for logs and reasons."""
    first = first_line(str(exc), limit=limit)
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__


class PermanentError(Exception):
    """Trying again cannot help: the event is marked failed (or invalid)."""


class TransientError(Exception):
    """A dependency was unavailable; a retry later may succeed."""


@dataclass(frozen=True)
class FieldError:
    """One bad field: where it is (a path into the input), what is wrong, and its kind."""

    loc: tuple[str | int, ...]
    msg: str
    type: str = "value_error"

    @property
    def field(self) -> str:
        """The dotted path, ``body`` for the input as a whole."""
        return ".".join(str(part) for part in self.loc) or "body"

    def as_dict(self) -> dict[str, Any]:
        """As problem documents and stored events list it."""
        return {"field": self.field, "message": self.msg, "type": self.type}


class InvalidInput(PermanentError):
    """The input is well-formed but wrong; each bad field is listed."""

    def __init__(self, errors: Iterable[FieldError]) -> None:
        self.errors = list(errors)
        super().__init__(str(self))

    def __str__(self) -> str:
        return "; ".join(f"{e.field}: {e.msg}" for e in self.errors)

    def error_dicts(self) -> list[dict[str, Any]]:
        return [error.as_dict() for error in self.errors]


def failure_trace(exc: BaseException) -> str:
    """Where ``exc`` and the exceptions behind it were raised, by type, without their messages.

    For logs. A message can quote its input: a database's DETAIL line ("Failing
    row contains (…)"), a ``KeyError``'s key, a validator's value. Logs must
    never carry a payload, so only the types and the stack go there; the first
    line of the message is kept with the failed work (an event's ``error``).
    """
    parts: list[str] = []
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        kind = type(current)
        intro = "raised" if current is exc else "after"
        parts.append(f"{intro} {kind.__module__}.{kind.__qualname__}:\n")
        parts.extend(traceback.format_tb(current.__traceback__))
        current = current.__cause__ or current.__context__
    return "".join(parts).rstrip()
