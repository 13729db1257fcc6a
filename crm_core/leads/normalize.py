"""Lead normalization: pure functions from what a form sent to what the CRM stores.

Nothing here touches the database. ``normalize_lead`` checks every field and
raises one ``InvalidInput`` listing each bad one, so a caller can report them all.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import phonenumbers
from email_validator import EmailNotValidError, validate_email

from crm_core.customers.consent import ConsentStatement, ConsentStatus
from crm_core.ingestion.schemas import LeadConsent, LeadDeal, LeadPayload
from crm_core.leads.countries import normalize_country
from crm_core.leads.domains import free_mail_domains, is_free_or_disposable
from crm_core.leads.errors import InvalidField, invalid_lead

__all__ = [
    "NormalizedLead",
    "PhoneResult",
    "email_domain",
    "free_mail_domains",
    "is_free_or_disposable",
    "join_name",
    "normalize_country",
    "normalize_email",
    "normalize_lead",
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


def _clean(value: str | None) -> str | None:
    if value is None:
        return None
    value = _SPACES.sub(" ", value).strip()
    return value or None


def split_name(full_name: str | None) -> tuple[str | None, str | None]:
    """``(first, last)`` of a full name: "Ada Lovelace", "Lovelace, Ada", "Ada"."""
    name = _clean(full_name)
    if name is None:
        return None, None
    if "," in name:
        last, _, first = name.partition(",")
        return _clean(first), _clean(last)
    words = name.split(" ")
    if len(words) == 1:
        return words[0], None
    start = len(words) - 1
    while start > 1 and words[start - 1] in SURNAME_PARTICLES:
        start -= 1
    return " ".join(words[:start]), " ".join(words[start:])


def join_name(first: str | None, last: str | None) -> str | None:
    """ "First Last" from the parts that are there; ``None`` when neither is."""
    parts = [part for part in (_clean(first), _clean(last)) if part]
    return " ".join(parts) or None


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


def _names(payload: LeadPayload) -> tuple[str | None, str | None, str | None]:
    first, last = _clean(payload.first_name), _clean(payload.last_name)
    if first is None and last is None:
        first, last = split_name(payload.full_name)
    return first, last, _clean(payload.full_name) or join_name(first, last)


def normalize_lead(payload: LeadPayload, *, default_region: str | None) -> NormalizedLead:
    """Normalize every field of ``payload``; ``InvalidInput`` lists each bad field."""
    problems: list[InvalidField] = []
    email = None
    if payload.email:
        try:
            email = normalize_email(payload.email)
        except InvalidField as problem:
            problems.append(problem)
    if problems:
        raise invalid_lead(problems)
    country = normalize_country(payload.country)
    phone = None
    if payload.phone and payload.phone.strip():
        phone = normalize_phone(payload.phone, region=country or default_region)
    first, last, full = _names(payload)
    return NormalizedLead(
        email=email,
        email_display=payload.email.strip() if payload.email else None,
        phone=phone,
        first_name=first,
        last_name=last,
        full_name=full,
        company=_clean(payload.company),
        job_title=_clean(payload.job_title),
        country=country,
        country_raw=_clean(payload.country),
        external_id=_clean(payload.external_id),
        message=payload.message.strip() if payload.message else None,
        utm_source=_clean(payload.utm_source),
        utm_medium=_clean(payload.utm_medium),
        utm_campaign=_clean(payload.utm_campaign),
        deal=payload.deal,
        attributes=dict(payload.attributes or {}),
        consent=_consent(payload.consent),
        extra_fields=dict(payload.extra_fields or {}),
    )


def _consent(consent: LeadConsent | None) -> ConsentStatement | None:
    if consent is None:
        return None
    method = _clean(consent.method)
    return ConsentStatement(ConsentStatus(consent.status.value), consent.at, method)
