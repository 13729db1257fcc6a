"""A contact's marketing consent: what was last stated, by which source, and when.

Senders state consent in their own words (a shop's ``email_marketing_consent``,
a form's checkbox, the ``consent`` of a standard lead); each becomes a
``ConsentStatement``. ``apply_consent`` is the one rule that decides whether a
statement replaces the stored one:

- the latest statement by time wins: an older one never overwrites a newer one
  (events can arrive, or be replayed, out of order);
- ``unknown`` says nothing about the person's wishes (a double opt-in still
  pending, a shop that never asked), so it only fills a contact with no consent
  yet, and never replaces a ``granted`` or ``denied``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from crm_core.customers.models import ConsentStatus, Contact

__all__ = ["ConsentStatement", "ConsentStatus", "apply_consent", "supersedes"]


@dataclass(frozen=True)
class ConsentStatement:
    """One sender's statement of a person's marketing consent.

    ``stated_at`` is ``None`` when the sender gave no time: the event's arrival
    stands in for it (``stamped``) before the statement is applied.
    """

    status: ConsentStatus
    stated_at: dt.datetime | None = None
    # How the sender collected it: ``single_opt_in``, ``confirmed_opt_in``, ``form_checkbox``…
    method: str | None = None

    def stamped(self, received_at: dt.datetime) -> ConsentStatement:
        """This statement with ``received_at`` as its time when it has none."""
        if self.stated_at is not None:
            return self
        return ConsentStatement(self.status, received_at, self.method)

    def as_dict(self) -> dict[str, Any]:
        """The statement as JSON values, for an Activity's details."""
        return {
            "status": self.status.value,
            "at": self.stated_at.isoformat() if self.stated_at else None,
            "method": self.method,
        }


def _aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)


def supersedes(statement: ConsentStatement, contact: Contact) -> bool:
    """Whether ``statement`` replaces the contact's stored consent (see the module's rule)."""
    stored = contact.marketing_consent
    if stored is None:
        return True
    if statement.status == ConsentStatus.UNKNOWN and stored != ConsentStatus.UNKNOWN:
        return False
    stored_at = contact.marketing_consent_at
    if stored_at is None or statement.stated_at is None:
        return stored_at is None
    return _aware(statement.stated_at) >= _aware(stored_at)


def apply_consent(
    contact: Contact, statement: ConsentStatement, *, source_id: int | None
) -> dict[str, dict[str, Any]]:
    """Record ``statement`` on ``contact`` if it supersedes the stored one; the changes made.

    The changes are keyed ``marketing_consent`` (and its ``_at``, ``_source_id``,
    ``_method``), each ``{"from": old, "to": new}``, as the lead's Activity lists them.
    """
    if not supersedes(statement, contact):
        return {}
    new = {
        "marketing_consent": statement.status.value,
        "marketing_consent_at": statement.stated_at,
        "marketing_consent_source_id": source_id,
        "marketing_consent_method": statement.method,
    }
    changes: dict[str, dict[str, Any]] = {}
    for name, value in new.items():
        old = getattr(contact, name)
        if old != value and not (isinstance(old, dt.datetime) and _same_instant(old, value)):
            changes[name] = {"from": _plain(old), "to": _plain(value)}
            setattr(contact, name, value)
    return changes


def _same_instant(old: dt.datetime, new: Any) -> bool:
    return isinstance(new, dt.datetime) and _aware(old) == _aware(new)


def _plain(value: Any) -> Any:
    return value.isoformat() if isinstance(value, dt.datetime) else value
