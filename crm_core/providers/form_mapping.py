"""A web form's fields in our terms: a lead.

A field named like a lead's field (``email``, ``first_name``, ``utm_source``…)
fills it. The ``consent`` checkbox is the person's marketing consent, stated
when the form was posted: a ticked box (``yes``, ``on``, ``true``, ``1``)
grants it, ``no`` (``off``, ``false``, ``0``) denies it, an absent or empty
field states nothing. Fields starting with ``_`` are the form's own (the
``_gotcha`` honeypot); any other field is kept, as given, in the lead's
Activity (``extra_fields``: the first 50, each up to 2,000 characters).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from crm_core.providers.mapped import Loc, Mapped

LEAD_FIELDS = (
    "email",
    "phone",
    "first_name",
    "last_name",
    "full_name",
    "company",
    "job_title",
    "country",
    "external_id",
    "message",
    "utm_source",
    "utm_medium",
    "utm_campaign",
)
CONSENT_FIELD = "consent"
HONEYPOT_FIELD = "_gotcha"
GRANTED = frozenset({"yes", "on", "true", "1", "granted"})
DENIED = frozenset({"no", "off", "false", "0", "denied"})
SUBMISSION = "submission"
MAX_EXTRA = 50
MAX_EXTRA_VALUE = 2000


def consent_status(value: str) -> str | None:
    """The consent a checkbox's value states; ``None`` for an empty one. Anything else is
    returned as given, for the lead's check to refuse by name."""
    folded = value.strip().lower()
    if not folded:
        return None
    if folded in GRANTED:
        return "granted"
    if folded in DENIED:
        return "denied"
    return value[:80]


def submission(document: dict[str, Any]) -> Mapped:
    """A posted form (its fields, each with its last value) as a lead."""
    mapped: dict[str, Any] = {}
    origins: dict[Loc, Loc] = {}
    extra: dict[str, str] = {}
    for name, value in document.items():
        if name in LEAD_FIELDS:
            if isinstance(value, str) and value.strip():
                mapped[name] = value
        elif name == CONSENT_FIELD:
            status = consent_status(value) if isinstance(value, str) else None
            if status is not None:
                mapped["consent"] = {"status": status, "method": "form_checkbox"}
                origins[("consent", "status")] = (CONSENT_FIELD,)
        elif not name.startswith("_") and isinstance(value, str) and len(extra) < MAX_EXTRA:
            # The Activity keeps what it can: a form's extras never refuse the lead.
            extra[name] = value[:MAX_EXTRA_VALUE]
    if extra:
        mapped["extra_fields"] = extra
        origins[("extra_fields",)] = ()
    return Mapped(mapped, origins)


MAPPERS: dict[str, Callable[[dict[str, Any]], Mapped]] = {SUBMISSION: submission}
