"""The mapping file of a ``custom`` source: how any JSON sender is verified and read.

A TOML file (``docs/providers/custom.md``) names the kind the sender's requests
become, its signature scheme, where its delivery id (and optionally its topic)
is, and a JSON Pointer (RFC 6901) for each field of the kind. ``load_mapping``
reads and checks it when the source is added; the checked document is stored
with the source, and ``CustomMapping.model_validate`` reads it back in the web
process and the workers.
"""

from __future__ import annotations

import enum
import string
import tomllib
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import Annotated, Any, Literal

from jsonpointer import JsonPointer, JsonPointerException
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from crm_core.errors import FieldError, InvalidInput
from crm_core.payloads.kinds import PROVIDER_ONLY_KINDS, EventKind
from crm_core.payloads.schemas import PAYLOAD_SCHEMAS

# A mapping file is a few dozen lines; anything near this is not one.
MAX_FILE_BYTES = 64 * 1024
# The placeholders of a signed timestamp's joined form.
PLACEHOLDERS = frozenset({"timestamp", "body"})


def _pointer(value: str) -> str:
    """A JSON Pointer: ``""`` (the whole document) or ``/``-separated reference tokens."""
    try:
        JsonPointer(value)
    except JsonPointerException as exc:
        raise ValueError(f"not a JSON Pointer (RFC 6901): {exc}") from None
    return value


Pointer = Annotated[str, Field(max_length=500), AfterValidator(_pointer)]
# An HTTP header name: an RFC 9110 token.
HeaderName = Annotated[
    str, Field(min_length=1, max_length=100, pattern=r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
]


class Algorithm(enum.StrEnum):
    SHA256 = "sha256"
    SHA1 = "sha1"


class Encoding(enum.StrEnum):
    HEX = "hex"
    BASE64 = "base64"


class _Part(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SignedTimestamp(_Part):
    """A timestamp header the signature covers too, and how far from now it may be."""

    header: HeaderName
    # What is signed: the header's value and the raw body, joined as this says.
    signed: Annotated[str, Field(min_length=1, max_length=200)] = "{timestamp}.{body}"
    format: Literal["unix", "iso8601"] = "unix"
    # Seconds either way; absent: CRM_SIGNATURE_TOLERANCE_SECONDS.
    tolerance: Annotated[int, Field(ge=1, le=7 * 24 * 3600)] | None = None

    @field_validator("signed")
    @classmethod
    def _placeholders(cls, value: str) -> str:
        try:
            names = [name for _, name, _, _ in string.Formatter().parse(value) if name is not None]
        except ValueError as exc:
            raise ValueError(f"not a joined form: {exc}") from None
        unknown = sorted(set(names) - PLACEHOLDERS)
        if unknown:
            raise ValueError(
                f"unknown placeholder {{{unknown[0]}}}: use {{timestamp}} and {{body}}"
            )
        if names.count("timestamp") != 1 or names.count("body") != 1:
            raise ValueError("{timestamp} and {body} must each appear once")
        return value

    def message(self, timestamp: str, body: bytes) -> bytes:
        """The bytes the sender signed: the joined form with the header's value and the body."""
        parts: list[bytes] = []
        for literal, name, _, _ in string.Formatter().parse(self.signed):
            parts.append(literal.encode())
            if name == "timestamp":
                parts.append(timestamp.encode())
            elif name == "body":
                parts.append(body)
        return b"".join(parts)


class Signature(_Part):
    """``header`` carries ``prefix`` + the encoded HMAC of the body (or of the joined form)."""

    header: HeaderName
    algorithm: Algorithm = Algorithm.SHA256
    encoding: Encoding = Encoding.HEX
    prefix: Annotated[str, Field(max_length=40, pattern=r"^[\x21-\x7e]*$")] = ""
    timestamp: SignedTimestamp | None = None


class Locator(_Part):
    """A value the intake reads: a header, or a JSON Pointer into the body (one of them)."""

    header: HeaderName | None = None
    pointer: Pointer | None = None

    @model_validator(mode="after")
    def _one_place(self) -> Locator:
        if (self.header is None) == (self.pointer is None):
            raise ValueError("give exactly one of header or pointer")
        return self

    @property
    def name(self) -> str:
        """How errors name the place: the header's name or the pointer."""
        return self.header or self.pointer or ""


class Topic(Locator):
    """The sender's event type; with ``handled``, any other one is stored ``ignored``."""

    handled: Annotated[list[Annotated[str, Field(max_length=255)]], Field(min_length=1)] | None = (
        None
    )


class Items(_Part):
    """A list field of the kind (an order's lines): each item of ``each``, read field by field."""

    model_config = ConfigDict(extra="allow", frozen=True)

    each: Pointer

    @property
    def fields(self) -> dict[str, str]:
        """The item's fields, each with its pointer relative to the item."""
        return dict(self.model_extra or {})


def _source_form(value: Any) -> str:
    return "items" if isinstance(value, dict | Items) else "pointer"


# A field's source: a pointer, or for a list of objects a table of pointers (``Items``).
FieldSource = Annotated[
    Annotated[str, Field(max_length=500), AfterValidator(_pointer), Tag("pointer")]
    | Annotated[Items, Tag("items")],
    Discriminator(_source_form),
]


class CustomMapping(BaseModel):
    """A whole mapping file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: EventKind
    signature: Signature
    delivery_id: Locator
    topic: Topic | None = None
    fields: Annotated[dict[str, FieldSource], Field(min_length=1, max_length=200)]
    # Values no request carries (a currency, a UTM source); a pointer that finds a value wins.
    constants: Annotated[dict[str, Any], Field(max_length=200)] = {}

    @field_validator("kind")
    @classmethod
    def _kind_with_payload(cls, value: EventKind) -> EventKind:
        if value in PROVIDER_ONLY_KINDS:
            raise ValueError(f"{value} come only from e-mail providers: no mapping makes them")
        return value

    @field_validator("fields")
    @classmethod
    def _known_fields(cls, value: dict[str, str | Items], info: ValidationInfo) -> Any:
        kind = info.data.get("kind")
        if kind is None:
            return value
        known = kind_fields(kind)
        for name, source in value.items():
            if isinstance(source, Items):
                item_fields = known.lists.get(name)
                if item_fields is None:
                    raise ValueError(f"{name}: not a list of {kind}; give it a JSON Pointer")
                for item_name, pointer in source.fields.items():
                    if item_name not in item_fields:
                        raise ValueError(f"{name}.{item_name}: {_unknown(item_fields, name)}")
                    _check_item_pointer(f"{name}.{item_name}", pointer)
            elif name not in known.pointers:
                raise ValueError(f"{name}: {_unknown(known.pointers, kind)}")
        return value

    @field_validator("constants")
    @classmethod
    def _known_constants(cls, value: dict[str, Any], info: ValidationInfo) -> Any:
        kind = info.data.get("kind")
        for name, constant in value.items():
            if not isinstance(constant, str | int | float | bool) or (
                isinstance(constant, str) and len(constant) > 1000
            ):
                raise ValueError(
                    f"{name}: a constant is a string (at most 1000 characters),"
                    " a number or true/false"
                )
            if kind is not None and name not in kind_fields(kind).constants:
                raise ValueError(f"{name}: {_unknown(kind_fields(kind).constants, kind)}")
        return value


def _unknown(names: frozenset[str], of: str = "") -> str:
    return f"not a field{of and ' of ' + of}; one of " + ", ".join(sorted(names))


def _check_item_pointer(name: str, pointer: Any) -> None:
    if not isinstance(pointer, str):
        raise ValueError(f"{name}: give a JSON Pointer relative to the item")
    try:
        _pointer(pointer)
    except ValueError as exc:
        raise ValueError(f"{name}: {exc}") from None


# --- which fields a kind has ----------------------------------------------------------------


@dataclass(frozen=True)
class KindFields:
    """Where a mapping may put values in a kind's payload."""

    # Fields a JSON Pointer may fill: every top-level field, and ``a.b`` for a nested object's.
    pointers: frozenset[str]
    # Fields a constant may fill: the same, less lists and whole nested objects.
    constants: frozenset[str]
    # List fields of objects (an order's ``lines``) -> their items' fields.
    lists: Mapping[str, frozenset[str]]
    # Text fields (``external_id``, ``lines.sku``): an integer read into one is its decimal text.
    texts: frozenset[str] = frozenset()


@cache
def kind_fields(kind: str) -> KindFields:
    """The fields of ``kind``'s payload schema, read from the schema itself."""
    pointers: set[str] = set()
    constants: set[str] = set()
    lists: dict[str, frozenset[str]] = {}
    texts: set[str] = set()
    for name, annotation in _fields(PAYLOAD_SCHEMAS[kind]).items():
        pointers.add(name)
        model, many = _model_in(annotation)
        if model is None:
            if not _is_container(annotation):
                constants.add(name)
            if _is_text(annotation):
                texts.add(name)
            continue
        inner = _fields(model)
        texts |= {f"{name}.{field}" for field, type_ in inner.items() if _is_text(type_)}
        if many:
            lists[name] = frozenset(inner)
        else:
            pointers |= {f"{name}.{field}" for field in inner}
            constants |= {f"{name}.{field}" for field in inner}
    return KindFields(frozenset(pointers), frozenset(constants), lists, frozenset(texts))


def _fields(model: type[BaseModel]) -> dict[str, Any]:
    return {field.alias or name: field.annotation for name, field in model.model_fields.items()}


def _model_in(annotation: Any, many: bool = False) -> tuple[type[BaseModel] | None, bool]:
    """The payload model inside ``annotation`` (through Optional, Annotated, list), if any."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation, many
    origin = typing.get_origin(annotation)
    if origin is list:
        return _model_in(typing.get_args(annotation)[0], True)
    if origin in (typing.Union, types.UnionType, typing.Annotated):
        for arg in typing.get_args(annotation):
            found = _model_in(arg, many)
            if found[0] is not None:
                return found
    return None, False


def _is_text(annotation: Any) -> bool:
    """Whether ``annotation`` is a string (through Optional and Annotated)."""
    if annotation is str:
        return True
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _is_text(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        return any(_is_text(arg) for arg in typing.get_args(annotation) if arg is not type(None))
    return False


def _is_container(annotation: Any) -> bool:
    """Whether ``annotation`` is a list or an object (no constant fills those)."""
    origin = typing.get_origin(annotation)
    if origin in (list, dict):
        return True
    if origin in (typing.Union, types.UnionType, typing.Annotated):
        return any(_is_container(arg) for arg in typing.get_args(annotation))
    return False


# --- reading a file -------------------------------------------------------------------------


def load_mapping(text: str | bytes) -> CustomMapping:
    """A mapping file's text, checked; ``InvalidInput`` naming each bad key otherwise."""
    if len(text) > MAX_FILE_BYTES:
        raise InvalidInput([FieldError((), f"a mapping file is at most {MAX_FILE_BYTES} bytes")])
    try:
        raw = text.decode("utf-8") if isinstance(text, bytes) else text
        document = tomllib.loads(raw)
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise InvalidInput([FieldError((), f"not a TOML file: {exc}", "toml_invalid")]) from None
    return mapping_from_document(document)


def mapping_from_document(document: Any) -> CustomMapping:
    """A mapping from its parsed (or stored) document; ``InvalidInput`` naming each bad key."""
    try:
        return CustomMapping.model_validate(document)
    except ValidationError as exc:
        raise InvalidInput(_errors(exc)) from None


def _errors(exc: ValidationError) -> list[FieldError]:
    errors = []
    for error in exc.errors(include_url=False):
        loc = tuple(part for part in error["loc"] if not _is_union_tag(part))
        message = error["msg"].removeprefix("Value error, ")
        errors.append(FieldError(loc, " ".join(message.split()), error["type"]))
    return errors


def _is_union_tag(part: str | int) -> bool:
    """Pydantic names the form of a field's source it read; the file's key is what matters."""
    return part in ("pointer", "items")
