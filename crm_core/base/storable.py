"""Text that a database cannot store: NUL characters and unpaired surrogates.

JSON may carry both (``"\\u0000"``, ``"\\udc00"``) and so may a percent-encoded URL (``%00``),
but PostgreSQL refuses a NUL in text and JSON, and neither database takes a string that is
not valid Unicode. Input is checked here, at the door, so it is refused as a field error
(a 4xx naming the field) and never reaches a query as a 500.
"""

from __future__ import annotations

import re
from typing import Any

from crm_core.errors import FieldError

_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
MESSAGE = "must not contain NUL characters or unpaired surrogates"


def is_storable(text: str) -> bool:
    """Whether ``text`` can be stored as text."""
    return _UNSTORABLE.search(text) is None


def unstorable_fields(value: Any, loc: tuple[str | int, ...] = ()) -> list[FieldError]:
    """Every place in a JSON-like ``value`` (keys too) holding text that cannot be stored."""
    if isinstance(value, str):
        return [] if is_storable(value) else [FieldError(loc, MESSAGE, "string_unstorable")]
    errors: list[FieldError] = []
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(key, str) and not is_storable(key):
                name = key.encode("unicode_escape").decode("ascii")
                errors.append(FieldError((*loc, name), MESSAGE, "key_unstorable"))
                continue
            errors.extend(unstorable_fields(item, (*loc, key)))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            errors.extend(unstorable_fields(item, (*loc, index)))
    return errors
