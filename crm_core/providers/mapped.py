"""What a provider mapping returns, and the small readers the mappings share."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from crm_core.errors import FieldError

Loc = tuple[str | int, ...]


@dataclass(frozen=True)
class Mapped:
    """A document in the kind's standard terms, and where each part came from."""

    document: dict[str, Any]
    # A standard path -> the provider's path it was read from; longest prefix wins.
    origins: Mapping[Loc, Loc] = field(default_factory=dict)

    def translate(self, errors: Iterable[FieldError]) -> list[FieldError]:
        """``errors`` about the standard document, renamed to the provider's paths."""
        return [FieldError(self.origin(error.loc), error.msg, error.type) for error in errors]

    def origin(self, loc: Loc) -> Loc:
        """Where ``loc`` of the standard document came from in the provider's."""
        # A handler may name a field by its dotted path as one part (``requester.email``).
        loc = tuple(
            piece
            for part in loc
            for piece in (part.split(".") if isinstance(part, str) else (part,))
        )
        for cut in range(len(loc), 0, -1):
            source = self.origins.get(loc[:cut])
            if source is not None:
                return source + loc[cut:]
        return loc


def dig(document: Any, *path: str | int) -> Any:
    """The value at ``path`` in nested objects and arrays; ``None`` where any step is missing."""
    node = document
    for step in path:
        if isinstance(step, int):
            if not isinstance(node, list) or not -len(node) <= step < len(node):
                return None
            node = node[step]
        elif isinstance(node, dict):
            node = node.get(step)
        else:
            return None
    return node


def first(*values: Any) -> Any:
    """The first value that is neither ``None`` nor blank."""
    for value in values:
        if value is not None and value != "":
            return value
    return None


def items(value: Any) -> list[Any]:
    """``value`` if it is an array, else no items."""
    return value if isinstance(value, list) else []
