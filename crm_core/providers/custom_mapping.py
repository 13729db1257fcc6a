"""A custom sender's document in our terms, as its source's mapping file says.

Each field of the kind is read at its JSON Pointer; a list of objects (an
order's ``lines``) is read item by item, each field at its pointer relative to
the item. An integer read into a text field (an id, a SKU) becomes its decimal
text, as senders often number what we name. A constant fills a field no pointer
found. What the kind's schema
then refuses is named by the pointer it was read from (``/order/items/1/price``),
the sender's own terms, or ``constants.NAME`` for a constant.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

from jsonpointer import EndOfList, JsonPointer, resolve_pointer

from crm_core.errors import FieldError, InvalidInput
from crm_core.providers.custom_spec import (
    CustomMapping,
    Items,
    kind_fields,
    mapping_from_document,
)
from crm_core.providers.mapped import Loc, Mapped

_MISSING = object()


@dataclass(frozen=True)
class PointerMapped(Mapped):
    """A ``Mapped`` whose origins are JSON Pointers: a field below one extends the pointer."""

    def origin(self, loc: Loc) -> Loc:
        found = super().origin(loc)
        if not found or not isinstance(found[0], str) or not found[0].startswith("/"):
            return found
        if len(found) == 1:
            return found
        pointer = JsonPointer(found[0])
        return (JsonPointer.from_parts([*pointer.parts, *map(str, found[1:])]).path,)


def mapper_for(
    mapping: dict[str, Any] | None,
) -> Callable[[str | None], Callable[[dict[str, Any]], Mapped]]:
    """The mapper of a custom source's events, whatever their topic, from its stored mapping."""
    if mapping is None:
        raise InvalidInput([FieldError(("mapping",), "the source has no mapping file", "missing")])
    spec = mapping_from_document(mapping)
    read = partial(map_custom, spec)
    return lambda topic: read


def map_custom(spec: CustomMapping, document: dict[str, Any]) -> Mapped:
    """``document`` restated as the kind's standard document, with each part's pointer."""
    mapped: dict[str, Any] = {}
    origins: dict[Loc, Loc] = {}
    texts = kind_fields(spec.kind).texts
    for target, source in spec.fields.items():
        if isinstance(source, Items):
            _read_items(target, source, document, mapped, origins, texts)
            continue
        path = tuple(target.split("."))
        origins[path] = (source,)
        value = _resolve(document, source)
        if value is not _MISSING:
            _place(mapped, path, _as_text(value) if target in texts else value)
    for target, constant in spec.constants.items():
        path = tuple(target.split("."))
        if _get(mapped, path) is _MISSING:
            _place(mapped, path, constant)
            origins[path] = ("constants", target)
    return PointerMapped(mapped, origins)


def _read_items(
    target: str,
    source: Items,
    document: Any,
    mapped: dict[str, Any],
    origins: dict[Loc, Loc],
    texts: frozenset[str],
) -> None:
    origins[(target,)] = (source.each,)
    found = _resolve(document, source.each)
    if found is _MISSING:
        return
    if not isinstance(found, list):
        mapped[target] = found  # the kind's schema says what is wrong with it
        return
    items = []
    for index, item in enumerate(found):
        at = _join(source.each, index)
        origins[(target, index)] = (at,)
        row: dict[str, Any] = {}
        for name, pointer in source.fields.items():
            origins[(target, index, name)] = (at + pointer,)
            value = _resolve(item, pointer)
            if value is not _MISSING:
                row[name] = _as_text(value) if f"{target}.{name}" in texts else value
        items.append(row)
    mapped[target] = items


def _as_text(value: Any) -> Any:
    """An integer as its decimal text; anything else as it is (the schema judges it)."""
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


def _resolve(document: Any, pointer: str) -> Any:
    value = resolve_pointer(document, pointer, _MISSING)
    return _MISSING if isinstance(value, EndOfList) else value


def _join(pointer: str, index: int) -> str:
    return JsonPointer.from_parts([*JsonPointer(pointer).parts, str(index)]).path


def _get(document: dict[str, Any], path: tuple[str, ...]) -> Any:
    node: Any = document
    for step in path:
        if not isinstance(node, dict) or step not in node:
            return _MISSING
        node = node[step]
    return node


def _place(document: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    """Set ``value`` at ``path``, making the nested objects on the way (``deal.amount``)."""
    node = document
    for step in path[:-1]:
        child = node.get(step)
        if not isinstance(child, dict):
            child = node[step] = {}
        node = child
    node[path[-1]] = value
