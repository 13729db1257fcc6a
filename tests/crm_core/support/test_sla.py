"""The SLA policy: due times by priority from the opening, configured by the settings."""

from __future__ import annotations

import datetime as dt

import pytest

from crm_core.config import Settings
from crm_core.support.models import SupportCase
from crm_core.support.sla import SlaPolicy

OPENED = dt.datetime(2026, 11, 30, 9, 0, tzinfo=dt.UTC)


def test_the_policy_is_built_from_both_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRM_SLA_RESOLUTION_HOURS", '{"urgent": 2, "normal": 48}')
    policy = SlaPolicy.from_settings(Settings(sla_first_response_hours={"urgent": 0.5}))
    assert policy.first_response_due("urgent", opened_at=OPENED) == OPENED + dt.timedelta(
        minutes=30
    )
    assert policy.resolution_due("urgent", opened_at=OPENED) == OPENED + dt.timedelta(hours=2)
    # A priority the setting leaves out is held to the setting's normal.
    assert policy.resolution_due("low", opened_at=OPENED) == OPENED + dt.timedelta(hours=48)


def test_applying_it_moves_only_the_promises_not_yet_kept() -> None:
    policy = SlaPolicy()
    answered = OPENED + dt.timedelta(minutes=20)
    case = SupportCase(priority="urgent", first_responded_at=answered)
    case.first_response_due_at = OPENED + dt.timedelta(hours=24)
    policy.apply(case, opened_at=OPENED)
    assert case.first_response_due_at == OPENED + dt.timedelta(hours=24)
    assert case.resolution_due_at == policy.resolution_due("urgent", opened_at=OPENED)
    resolved = SupportCase(priority="high", resolved_at=OPENED, resolution_due_at=OPENED)
    policy.apply(resolved, opened_at=OPENED)
    assert resolved.resolution_due_at == OPENED
    assert resolved.first_response_due_at == policy.first_response_due("high", opened_at=OPENED)
