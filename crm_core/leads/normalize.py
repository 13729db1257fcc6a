"""Lead normalization: pure functions from what a form sent to what the CRM stores.

Nothing here touches the database. ``NormalizedLead`` is what the lead services take;
ingestion builds it from a sender's payload (``crm_core.ingestion.commands.normalize_lead``).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import phonenumbers
from email_validator import EmailNotValidError, validate_email

from crm_core.customers.consent import ConsentStatement
from crm_core.leads.countries import normalize_country
from crm_core.leads.domains import free_mail_domains, is_free_or_disposable
from crm_core.leads.errors import InvalidField

__all__ = [
    "LeadDeal",
    "NormalizedLead",
    "PhoneResult",
    "clean_text",
    "email_domain",
    "free_mail_domains",
    "is_free_or_disposable",
    "join_name",
    "normalize_country",
    "normalize_email",
    "normalize_phone",
    "split_name",
]

_SPACES = re.compile(r"\s+")
# Lower-case words that belong to the surname: "Jean-Luc de la Fontaine", "Ludwig van Beethoven".
SURNAME_PARTICLES = frozenset(
    {
        "al",
        "bin",
        "da",
        "das",
        "de",
        "del",
        "della",
        "der",
        "di",
        "dos",
        "du",
        "el",
        "la",
        "le",
        "ten",
        "ter",
        "van",
        "von",
        "zu",
    }
)


def normalize_email(raw: str) -> str:
    """Trimmed, lower-cased and syntax-checked (no DNS); ``InvalidField`` when invalid."""
    candidate = raw.strip()
    try:
        checked = validate_email(candidate, check_deliverability=False)
    except EmailNotValidError as exc:
        raise InvalidField("email", str(exc)) from None
    return checked.normalized.lower()


def email_domain(email: str) -> str:
    """The domain of a normalized address: what follows the last ``@``."""
    return email.rsplit("@", 1)[-1].lower()


@dataclass(frozen=True)
class PhoneResult:
    """A phone number as E.164 when it parsed and is valid; the raw text always."""

    e164: str | None
    raw: str
    valid: bool


def normalize_phone(raw: str, *, region: str | None) -> PhoneResult:
    """E.164 with ``phonenumbers``; a national number is read in ``region``.

    A number that does not parse, or is not a valid number, is kept raw and
    flagged: a lead is never dropped for its phone.
    """
    text = _SPACES.sub(" ", raw).strip()
    try:
        parsed = phonenumbers.parse(text, region.upper() if region else None)
    except phonenumbers.NumberParseException:
        return PhoneResult(None, text, False)
    if not phonenumbers.is_valid_number(parsed):
        return PhoneResult(None, text, False)
    e164 = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
    return PhoneResult(e164, text, True)


def clean_text(value: str | None) -> str | None:
    """``value`` with runs of white space made one space and trimmed; ``None`` when empty."""
    if value is None:
        return None
    value = _SPACES.sub(" ", value).strip()
    return value or None


def split_name(full_name: str | None) -> tuple[str | None, str | None]:
    """``(first, last)`` of a full name: "Ada Lovelace", "Lovelace, Ada", "Ada"."""
    name = clean_text(full_name)
    if name is None:
        return None, None
    if "," in name:
        last, _, first = name.partition(",")
        return clean_text(first), clean_text(last)
    words = name.split(" ")
    if len(words) == 1:
        return words[0], None
    start = len(words) - 1
    while start > 1 and words[start - 1] in SURNAME_PARTICLES:
        start -= 1
    return " ".join(words[:start]), " ".join(words[start:])


def join_name(first: str | None, last: str | None) -> str | None:
    """ "First Last" from the parts that are there; ``None`` when neither is."""
    parts = [part for part in (clean_text(first), clean_text(last)) if part]
    return " ".join(parts) or None


@dataclass(frozen=True)
class LeadDeal:
    """The deal a lead brings, as its sender stated it."""

    name: str | None = None
    amount: Decimal | None = None
    currency: str | None = None
    close_date: dt.date | None = None

    def details(self) -> dict[str, Any]:
        """The stated fields as JSON values, for an Activity's details."""
        values: dict[str, Any] = {
            "name": self.name,
            "amount": None if self.amount is None else str(self.amount),
            "currency": self.currency,
            "close_date": None if self.close_date is None else self.close_date.isoformat(),
        }
        return {key: value for key, value in values.items() if value is not None}


@dataclass(frozen=True)
class NormalizedLead:
    """A lead as the CRM stores it: checked, cleaned, and ready to match."""

    email: str | None = None
    email_display: str | None = None
    phone: PhoneResult | None = None
    first_name: str | None = None
    last_name: str | None = None
    full_name: str | None = None
    company: str | None = None
    job_title: str | None = None
    country: str | None = None
    country_raw: str | None = None
    external_id: str | None = None
    message: str | None = None
    utm_source: str | None = None
    utm_medium: str | None = None
    utm_campaign: str | None = None
    deal: LeadDeal | None = None
    attributes: Mapping[str, Any] = field(default_factory=dict, hash=False)
    consent: ConsentStatement | None = None
    # Fields the sender sent that have no place on a lead (a form's extra inputs): the
    # lead's Activity keeps them.
    extra_fields: Mapping[str, str] = field(default_factory=dict, hash=False)

    @property
    def domain(self) -> str | None:
        """The e-mail domain, if there is an e-mail."""
        return email_domain(self.email) if self.email else None
