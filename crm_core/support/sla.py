"""Service levels of support cases: when the first response and the resolution are due.

Both clocks start when the case was opened where it was opened (a help desk's
ticket creation time, the arrival of an e-mail), never when we processed it,
and both follow the case's priority while the promise is not yet kept.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from crm_core.config import Settings
    from crm_core.support.models import SupportCase

DEFAULT_FIRST_RESPONSE_HOURS = {"urgent": 1.0, "high": 4.0, "normal": 24.0, "low": 72.0}
DEFAULT_RESOLUTION_HOURS = {"urgent": 8.0, "high": 24.0, "normal": 72.0, "low": 168.0}


@dataclass(frozen=True)
class SlaPolicy:
    """Hours to the first response and to the resolution, by case priority."""

    first_response_hours: Mapping[str, float] = field(
        default_factory=lambda: dict(DEFAULT_FIRST_RESPONSE_HOURS)
    )
    resolution_hours: Mapping[str, float] = field(
        default_factory=lambda: dict(DEFAULT_RESOLUTION_HOURS)
    )

    @classmethod
    def from_settings(cls, settings: Settings) -> SlaPolicy:
        """The policy configured by ``CRM_SLA_FIRST_RESPONSE_HOURS`` and
        ``CRM_SLA_RESOLUTION_HOURS``."""
        return cls(
            first_response_hours=dict(settings.sla_first_response_hours),
            resolution_hours=dict(settings.sla_resolution_hours),
        )

    def first_response_due(self, priority: str, *, opened_at: dt.datetime) -> dt.datetime:
        """When the first response to a case of ``priority`` opened at ``opened_at`` is due."""
        return opened_at + _hours(self.first_response_hours, DEFAULT_FIRST_RESPONSE_HOURS, priority)

    def resolution_due(self, priority: str, *, opened_at: dt.datetime) -> dt.datetime:
        """When a case of ``priority`` opened at ``opened_at`` is due to be resolved."""
        return opened_at + _hours(self.resolution_hours, DEFAULT_RESOLUTION_HOURS, priority)

    def apply(self, case: SupportCase, *, opened_at: dt.datetime) -> None:
        """Set the case's due times for its priority; a promise already kept stays as it was."""
        if case.first_responded_at is None:
            case.first_response_due_at = self.first_response_due(case.priority, opened_at=opened_at)
        if case.resolved_at is None:
            case.resolution_due_at = self.resolution_due(case.priority, opened_at=opened_at)


def _hours(
    configured: Mapping[str, float], defaults: Mapping[str, float], priority: str
) -> dt.timedelta:
    hours = configured.get(priority)
    if hours is None:
        hours = configured.get("normal", defaults["normal"])
    return dt.timedelta(hours=hours)
