"""A request body as a JSON document, with hostile input (not UTF-8, nested thousands deep,
5000-digit numbers) turned into one clean field error."""

from __future__ import annotations

import json
from typing import Any

from crm_core.errors import FieldError

JSON_TYPE = "application/json"


def media_type(content_type: str) -> str:
    """The media type of a ``Content-Type`` value, parameters dropped, lower case."""
    return content_type.split(";", 1)[0].strip().lower()


DEFAULT_MAX_DEPTH = 32
# Error messages are shown to senders; hostile input must not come back verbatim.
_MAX_MESSAGE = 300


def parse_json_body(body: bytes, *, max_depth: int = DEFAULT_MAX_DEPTH) -> Any:
    """The JSON document of an API body; ``ValueError`` with a one-line reason if there is none."""
    document = json_document(body, max_depth=max_depth)
    if isinstance(document, FieldError):
        raise ValueError(document.msg)
    return document


def json_document(body: bytes, *, max_depth: int) -> Any:
    """The parsed document of ``body``, or the ``FieldError`` that says why there is none."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return FieldError(("body",), "the body is not UTF-8", "encoding_error")
    try:
        document = json.loads(text)
    except RecursionError:
        return FieldError(("body",), f"JSON nested deeper than {max_depth} levels", "too_deep")
    except json.JSONDecodeError as exc:
        return FieldError(
            ("body",), f"not valid JSON: {exc.msg} at offset {exc.pos}", "json_invalid"
        )
    except ValueError as exc:
        # Integers beyond Python's digit limit raise a plain ValueError.
        return FieldError(("body",), str(exc).split(";")[0][:_MAX_MESSAGE], "number_too_large")
    if _nesting_depth(document) > max_depth:
        return FieldError(("body",), f"JSON nested deeper than {max_depth} levels", "too_deep")
    return document


def _nesting_depth(document: Any) -> int:
    """The deepest nesting of arrays and objects in a parsed document, without recursion."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(document, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            children: Any = node.values()
        elif isinstance(node, list):
            children = node
        else:
            continue
        deepest = max(deepest, depth)
        stack.extend((child, depth + 1) for child in children)
    return deepest
