"""Errors services raise, which the outer layers map to statuses and answers."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


class PermanentError(Exception):
    """Processing cannot succeed by trying again: the event is marked failed."""


@dataclass(frozen=True)
class FieldError:
    """One bad field: where it is (a path) and what is wrong with it."""

    loc: tuple[str | int, ...]
    msg: str

    def as_dict(self) -> dict[str, Any]:
        return {"loc": list(self.loc), "msg": self.msg}


@dataclass
class InvalidInput(PermanentError):
    """The input is well-formed but wrong; each bad field is listed."""

    errors: list[FieldError] = field(default_factory=list)

    def __str__(self) -> str:
        return "; ".join(f"{'.'.join(map(str, e.loc)) or '(body)'}: {e.msg}" for e in self.errors)
