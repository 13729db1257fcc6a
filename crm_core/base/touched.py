"""What a service created or changed, reported back to the event that caused it."""

from __future__ import annotations

from crm_core.base.entities import EntityType


class Touched:
    """An ordered, duplicate-free list of ``(entity_type, id)`` pairs."""

    def __init__(self) -> None:
        self._items: dict[tuple[str, int], None] = {}

    def add(self, entity_type: EntityType, entity_id: int | None) -> None:
        if entity_id is not None:
            self._items[(str(entity_type), entity_id)] = None

    def extend(self, other: Touched) -> None:
        self._items.update(other._items)

    def items(self) -> list[tuple[str, int]]:
        return list(self._items)

    def __contains__(self, item: object) -> bool:
        return item in self._items
