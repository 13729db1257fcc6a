"""The columns of a contacts file, shared by the export and the import so one reads the other.

An import reads the lead fields (matched and merged by the lead rules), an
``attributes`` column (a JSON object) and ``attributes.NAME`` columns (one
attribute each). The export's other columns describe the stored contact (its id,
its customer, whether it is primary, its tags, its marketing consent, its times); an
import skips them. Consent in particular is what a person stated to a source, with
when and how: a file is no such statement, so an import neither sets nor changes it.
Any other column refuses the file: a misspelt ``emial`` must not pass silently.
"""

from __future__ import annotations

# What a lead (and so an imported row) says about a person, as the lead payload names it.
LEAD_COLUMNS = (
    "email",
    "phone",
    "first_name",
    "last_name",
    "full_name",
    "company",
    "job_title",
    "country",
)
ATTRIBUTES = "attributes"
ATTRIBUTE_PREFIX = "attributes."
# Written by the export, skipped by the import: the CRM decides these itself.
# The contact's marketing consent as last stated (``crm_core.customers.consent``): status
# (granted, denied, unknown; empty when never stated), when, by which source, how.
CONSENT_COLUMNS = (
    "marketing_consent",
    "marketing_consent_at",
    "marketing_consent_source_id",
    "marketing_consent_method",
)
EXPORT_ONLY = ("id", "customer_id", "is_primary", "tags", *CONSENT_COLUMNS, "created_at",
               "updated_at")  # fmt: skip
EXPORT_COLUMNS = ("id", "customer_id", *LEAD_COLUMNS, "is_primary", "tags", ATTRIBUTES,
                  *CONSENT_COLUMNS, "created_at", "updated_at")  # fmt: skip


def unknown_columns(header: list[str]) -> list[str]:
    """The columns of ``header`` an import does not know."""
    known = {*LEAD_COLUMNS, *EXPORT_ONLY, ATTRIBUTES}
    return [
        name
        for name in header
        if name not in known and not (name.startswith(ATTRIBUTE_PREFIX) and len(name) > 11)
    ]


# What a spreadsheet reads as the start of a formula (OWASP's CSV injection list).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def escape_formula(text: str) -> str:
    """``text`` with a ``'`` in front when a spreadsheet would run it as a formula."""
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def unescape_formula(text: str) -> str:
    """``escape_formula`` undone."""
    return text[1:] if text.startswith("'") and text[1:].startswith(FORMULA_STARTS) else text
