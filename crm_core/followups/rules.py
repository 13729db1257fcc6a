"""Follow-up rules: what is left waiting, for how long, and what happens then.

Rules live in a TOML file (``CRM_FOLLOWUP_RULES``; the defaults below ship
with the platform). Each rule has a unique ``name`` (its identity: a subject
fires a rule once, so renaming a rule makes it fire again), a ``kind`` and a
waiting time ``after`` written as a number and a unit, e.g. ``"30s"``,
``"15m"``, ``"48h"``, ``"7d"``, ``"2w"`` or combined, ``"1h30m"``::

    [[rule]]
    name = "lead-without-contact"
    kind = "lead_no_outbound"     # a lead nobody wrote to
    after = "48h"
    owner = "sales@example.com"   # when the customer has no owner
    email_subject = "Following up, {{ contact.first_name }}"
    email_text = "Hello {{ contact.first_name }}, ..."

    [[rule]]
    name = "case-first-response"
    kind = "case_first_response_overdue"
    after = "0s"                  # past the case's own due time by this much
    notify = true                 # send case.escalated to subscribers

    [[rule]]
    name = "opportunity-idle"
    kind = "opportunity_idle"
    after = "14d"
"""

from __future__ import annotations

import datetime as dt
import re
import tomllib
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from crm_core.campaigns.templates import compile_templates
from crm_core.errors import InvalidInput

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}
_DURATION = re.compile(r"^(?:\d+[smhdw])+$")
_PART = re.compile(r"(\d+)([smhdw])")
DEFAULT_RULES = "default_rules.toml"


class RulesError(ValueError):
    """The rules file cannot be used; the message names the rule and the field."""


def parse_duration(value: object) -> dt.timedelta:
    """``"1h30m"`` → 90 minutes. Units: s, m, h, d, w; a bare number is seconds."""
    if isinstance(value, bool):
        raise ValueError("must be a duration such as '30s', '48h' or '7d'")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str) and _DURATION.match(value.strip().lower()):
        text = value.strip().lower()
        seconds = float(sum(int(n) * _UNITS[u] for n, u in _PART.findall(text)))
    else:
        raise ValueError("must be a duration such as '30s', '48h' or '7d'")
    if seconds < 0:
        raise ValueError("must not be negative")
    return dt.timedelta(seconds=seconds)


Duration = Annotated[dt.timedelta, Field(description="e.g. '30s', '48h', '7d'")]


class _Rule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=80, pattern=r"^[A-Za-z0-9_.:-]+$")
    after: Duration
    owner: str | None = Field(default=None, max_length=255)
    enabled: bool = True

    @field_validator("after", mode="before")
    @classmethod
    def _duration(cls, value: object) -> dt.timedelta:
        return parse_duration(value)


class LeadNoOutbound(_Rule):
    """A contact of a lead customer with no outbound Activity within ``after`` of its capture."""

    kind: Literal["lead_no_outbound"]
    email_subject: str | None = None
    email_text: str | None = None

    @model_validator(mode="after")
    def _templates(self) -> LeadNoOutbound:
        if (self.email_subject is None) != (self.email_text is None):
            raise ValueError("email_subject and email_text go together")
        if self.email_subject is not None and self.email_text is not None:
            try:
                compile_templates(subject=self.email_subject, text=self.email_text)
            except InvalidInput as exc:
                raise ValueError(str(exc)) from None
        return self

    @property
    def sends_email(self) -> bool:
        return self.email_subject is not None


class CaseFirstResponseOverdue(_Rule):
    """An open case still without a first response ``after`` past its first-response due time."""

    kind: Literal["case_first_response_overdue"]
    notify: bool = True


class OpportunityIdle(_Rule):
    """An open opportunity with no Activity for ``after``."""

    kind: Literal["opportunity_idle"]


Rule = Annotated[
    LeadNoOutbound | CaseFirstResponseOverdue | OpportunityIdle, Field(discriminator="kind")
]


class RuleSet(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    rule: list[Rule] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique_names(self) -> RuleSet:
        seen: set[str] = set()
        for rule in self.rule:
            if rule.name in seen:
                raise ValueError(f"two rules are named {rule.name!r}")
            seen.add(rule.name)
        return self

    @property
    def active(self) -> list[LeadNoOutbound | CaseFirstResponseOverdue | OpportunityIdle]:
        return [rule for rule in self.rule if rule.enabled]


def parse_rules(text: str, *, origin: str = "rules") -> RuleSet:
    """Rules from TOML text; ``RulesError`` with one line per problem, naming the rule."""
    try:
        data: dict[str, Any] = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise RulesError(f"{origin}: not valid TOML: {exc}") from None
    try:
        return RuleSet.model_validate(data)
    except ValidationError as exc:
        raise RulesError(
            f"{origin}: " + "; ".join(_describe(e, data) for e in exc.errors())
        ) from None


def _describe(error: Any, data: dict[str, Any]) -> str:
    loc = list(error["loc"])
    where = ".".join(str(part) for part in loc) or "file"
    if len(loc) >= 2 and loc[0] == "rule" and isinstance(loc[1], int):
        rules = data.get("rule") or []
        entry = rules[loc[1]] if loc[1] < len(rules) and isinstance(rules[loc[1]], dict) else {}
        name = entry.get("name") or f"#{loc[1] + 1}"
        # Drop the discriminator tag pydantic puts in the path.
        fields = [str(p) for p in loc[2:] if str(p) not in _KINDS]
        where = f"rule {name!r}" + (f", field {'.'.join(fields)}" if fields else "")
    message = str(error["msg"]).removeprefix("Value error, ")
    return f"{where}: {message}"


_KINDS = {"lead_no_outbound", "case_first_response_overdue", "opportunity_idle"}


def load_rules(path: str | Path | None) -> RuleSet:
    """The rules in ``path``, or the shipped defaults when it is empty."""
    if not path:
        text = resources.files("crm_core.followups").joinpath(DEFAULT_RULES).read_text("utf-8")
        return parse_rules(text, origin="default rules")
    try:
        text = Path(path).read_text("utf-8")
    except OSError as exc:
        raise RulesError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise RulesError(f"{path}: not UTF-8 text") from None
    return parse_rules(text, origin=str(path))
