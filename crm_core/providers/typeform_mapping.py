"""Typeform's ``form_response`` in our terms: a lead.

An answer fills a lead field when its question's ``ref`` is that field's name
(``first_name``, ``company``, ... set under the question's settings in
Typeform), or, for the e-mail and the phone, when the question is of type
``email`` / ``phone_number``. Hidden fields carry the UTM codes
(``utm_source``, ``utm_medium``, ``utm_campaign``). Other answers are not
kept (the stored event keeps them). The response's ``token`` is the lead's
external id.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

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


def form_response(document: dict[str, Any]) -> Mapped:
    """A submitted form as a lead."""
    mapped: dict[str, Any] = {}
    origins: dict[Loc, Loc] = {}
    for index, answer in enumerate(items(dig(document, ROOT, "answers"))):
        if not isinstance(answer, dict):
            continue
        ref = dig(answer, "field", "ref")
        name = ref if ref in LEAD_FIELDS else BY_TYPE.get(str(dig(answer, "field", "type")))
        value, key = answer_value(answer)
        if name is None or name in mapped or value in (None, ""):
            continue
        mapped[name] = value
        origins[(name,)] = (ROOT, "answers", index, key or "type")
    hidden = dig(document, ROOT, "hidden")
    for code in UTM:
        value = dig(hidden, code)
        if value not in (None, ""):
            mapped[code] = value
            origins[(code,)] = (ROOT, "hidden", code)
    token = dig(document, ROOT, "token")
    if token is not None:
        mapped["external_id"] = token
        origins[("external_id",)] = (ROOT, "token")
    return Mapped(mapped, origins)


MAPPERS: dict[str, Callable[[dict[str, Any]], Mapped]] = {"form_response": form_response}
