"""Typeform's ``form_response`` in our terms: a lead.

First the source's own refs (``crm sources add --map company=shop_name``,
stored as ``TypeformMapping``): the answer to the question of that ``ref``, or
else the hidden field of that name, fills the lead field. Then an answer fills a
lead field still empty when its question's ``ref`` is that field's name
(``first_name``, ``company``, ... set under the question's settings in
Typeform), or, for the e-mail and the phone, when the question is of type
``email`` / ``phone_number``. Hidden fields ``utm_source``, ``utm_medium``,
``utm_campaign`` carry the UTM codes unless a mapped ref filled them. Other
answers are not kept (the stored event keeps them). The response's ``token`` is
the lead's external id.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import partial
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from crm_core.errors import FieldError, InvalidInput
from crm_core.providers.mapped import Loc, Mapped, dig, items

ROOT = "form_response"
LEAD_FIELDS = (
    "email",
    "phone",
    "first_name",
    "last_name",
    "full_name",
    "company",
    "job_title",
    "country",
    "message",
)
BY_TYPE = {"email": "email", "phone_number": "phone"}
UTM = ("utm_source", "utm_medium", "utm_campaign")
# The fields ``--map`` may fill.
MAPPABLE = (*LEAD_FIELDS, *UTM)
Ref = Annotated[str, Field(min_length=1, max_length=255, pattern=r"^[^\s=]+$")]


class TypeformMapping(BaseModel):
    """A Typeform source's own refs: lead field -> a question's ``ref`` or a hidden field."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    answers: dict[str, Ref] = {}

    @field_validator("answers")
    @classmethod
    def _lead_fields(cls, value: dict[str, str]) -> dict[str, str]:
        for name in value:
            if name not in MAPPABLE:
                raise ValueError(f"{name}: not a lead field; one of {', '.join(MAPPABLE)}")
        return value


def mapping_from_pairs(pairs: list[str]) -> dict[str, Any] | None:
    """``LEAD_FIELD=REF`` pairs as a Typeform source's stored mapping; ``InvalidInput`` naming
    the bad pair. No pairs: no mapping."""
    if not pairs:
        return None
    answers: dict[str, str] = {}
    for pair in pairs:
        name, sep, ref = pair.partition("=")
        if not sep or name.strip() in answers:
            message = f"{pair!r}: give each lead field once, as LEAD_FIELD=REF"
            raise InvalidInput([FieldError(("map",), message[:300])])
        answers[name.strip()] = ref.strip()
    return checked_mapping({"answers": answers})


def checked_mapping(mapping: dict[str, Any]) -> dict[str, Any]:
    """A Typeform source's mapping as it is stored; ``InvalidInput`` (``map``) when wrong."""
    try:
        return TypeformMapping.model_validate(mapping).model_dump()
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
        message = "; ".join(e["msg"].removeprefix("Value error, ") for e in errors)
        raise InvalidInput([FieldError(("map",), message[:300])]) from None


def answer_value(answer: dict[str, Any]) -> tuple[Any, str | None]:
    """An answer's value and the key it is under (a choice's label for choices)."""
    kind = answer.get("type")
    if not isinstance(kind, str):
        return None, None
    value = answer.get(kind)
    if kind == "choice" and isinstance(value, dict):
        return value.get("label") or value.get("other"), kind
    if kind == "choices" and isinstance(value, dict):
        labels = [str(label) for label in items(value.get("labels"))]
        return ", ".join(labels) or None, kind
    if isinstance(value, bool | int | float):
        return str(value), kind
    return value, kind


def _by_ref(
    answers: list[tuple[int, dict[str, Any]]], hidden: Any, ref: str
) -> tuple[Any, Loc] | None:
    """The answer to the question ``ref``, else the hidden field ``ref``, and where it is."""
    for index, answer in answers:
        value, key = answer_value(answer)
        if dig(answer, "field", "ref") == ref and value not in (None, ""):
            return value, (ROOT, "answers", index, key or "type")
    value = dig(hidden, ref)
    if value not in (None, ""):
        return value, (ROOT, "hidden", ref)
    return None


def form_response(document: dict[str, Any], refs: Mapping[str, str] | None = None) -> Mapped:
    """A submitted form as a lead; ``refs`` are the source's own (lead field -> ref)."""
    mapped: dict[str, Any] = {}
    origins: dict[Loc, Loc] = {}
    answers = [
        (index, answer)
        for index, answer in enumerate(items(dig(document, ROOT, "answers")))
        if isinstance(answer, dict)
    ]
    hidden = dig(document, ROOT, "hidden")
    for field_name, wanted in (refs or {}).items():
        found = _by_ref(answers, hidden, wanted)
        if found is not None:
            mapped[field_name], origins[(field_name,)] = found
    for index, answer in answers:
        ref = dig(answer, "field", "ref")
        name = ref if ref in LEAD_FIELDS else BY_TYPE.get(str(dig(answer, "field", "type")))
        value, key = answer_value(answer)
        if name is None or name in mapped or value in (None, ""):
            continue
        mapped[name] = value
        origins[(name,)] = (ROOT, "answers", index, key or "type")
    for code in UTM:
        value = dig(hidden, code)
        if code not in mapped and value not in (None, ""):
            mapped[code] = value
            origins[(code,)] = (ROOT, "hidden", code)
    token = dig(document, ROOT, "token")
    if token is not None:
        mapped["external_id"] = token
        origins[("external_id",)] = (ROOT, "token")
    return Mapped(mapped, origins)


MAPPERS: dict[str, Callable[[dict[str, Any]], Mapped]] = {"form_response": form_response}


def mapper_for(
    mapping: dict[str, Any] | None,
) -> Callable[[str | None], Callable[[dict[str, Any]], Mapped] | None]:
    """The mapper of a topic for a source whose stored mapping is ``mapping``."""
    if mapping is None:
        return lambda topic: MAPPERS.get(topic or "")
    refs = TypeformMapping.model_validate(mapping).answers
    read = partial(form_response, refs=refs)
    return lambda topic: read if topic in MAPPERS else None
