"""The configuration reference, generated from the ``Settings`` fields.

Each field's ``description`` is the only prose about a setting, so the page
(docs/configuration.md, between its ``config`` markers) cannot drift from the
code: ``crm config-docs --write-into`` rewrites it, and a test fails when the
copy is stale. One section per variable, in the order ``Settings`` declares
them, with its type, default and bounds read off the field.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from annotated_types import Ge, Gt, Le, Lt
from pydantic import SecretStr
from pydantic.fields import FieldInfo

from crm_core.config import Settings

_TYPE_NAMES: dict[Any, str] = {
    str: "text",
    int: "integer",
    float: "number",
    bool: "boolean (`true` or `false`)",
    Path: "path",
    SecretStr: "text, secret",
}
_BOUNDS = (
    (Ge, "ge", "at least"),
    (Gt, "gt", "more than"),
    (Le, "le", "at most"),
    (Lt, "lt", "less than"),
)


def render_settings_reference(settings: type[Settings] = Settings) -> str:
    """Markdown sections, one per ``CRM_*`` variable, from the fields of ``settings``."""
    prefix = str(settings.model_config.get("env_prefix", ""))
    return "\n".join(
        "\n".join(_section(f"{prefix}{name}".upper(), field))
        for name, field in settings.model_fields.items()
    )


def _section(variable: str, field: FieldInfo) -> Iterator[str]:
    if not field.description:
        raise ValueError(f"{variable} has no description: describe it in Settings")
    yield f"## `{variable}`"
    yield ""
    yield field.description
    yield ""
    facts = [f"Type: {_type_name(field)}"]
    facts.extend(_bounds(field))
    default = _default(field)
    if "\n" in default:
        yield "; ".join(facts) + ". Default:"
        yield ""
        yield "```text"
        yield default.rstrip("\n")
        yield "```"
    else:
        yield "; ".join(facts) + f". Default: {default}."
    yield ""


def _type_name(field: FieldInfo) -> str:
    annotation = field.annotation
    origin = getattr(annotation, "__origin__", None)
    if origin is dict:
        return "JSON object"
    if origin is list:
        return "JSON list"
    if origin is frozenset:
        return "comma-separated list"
    return _TYPE_NAMES.get(annotation, getattr(annotation, "__name__", str(annotation)))


def _bounds(field: FieldInfo) -> Iterator[str]:
    for item in field.metadata:
        for kind, attribute, words in _BOUNDS:
            if isinstance(item, kind):
                yield f"{words} {getattr(item, attribute)}"
        pattern = getattr(item, "pattern", None)
        if pattern:
            yield f"matches `{pattern}`"


def _default(field: FieldInfo) -> str:
    value = field.get_default(call_default_factory=True)
    if isinstance(value, SecretStr):
        value = value.get_secret_value()
    if value in ("", [], frozenset(), None):
        return "unset"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, dict):
        return f"`{json.dumps(value)}`"
    if isinstance(value, str) and "\n" in value:
        return value
    return f"`{value}`"
