"""A notification event that needs no rows behind it, for tests about sending."""

from __future__ import annotations

import datetime as dt

from crm_core.notifications.events import CaseEscalated, CaseSummary, FollowUp

DUE = dt.datetime(2026, 5, 4, 9, 30, tzinfo=dt.UTC)


def sample_event(case_id: int = 7) -> CaseEscalated:
    """A ``case.escalated`` about case ``case_id``."""
    case = CaseSummary(
        id=case_id,
        subject="Printer on fire",
        status="open",
        priority="urgent",
        channel="email",
        customer_id=1,
        contact_id=2,
        assignee=None,
        first_response_due_at=DUE,
    )
    followup = FollowUp(
        id=case_id,
        rule="case-first-response",
        subject_type="support_case",
        subject_id=case_id,
        customer_id=1,
        contact_id=2,
        opportunity_id=None,
        support_case_id=case_id,
        owner=None,
        title=f"Case #{case_id} waits for a first response",
        status="open",
        due_at=DUE,
        completed_at=None,
        created_at=DUE,
        updated_at=DUE,
    )
    return CaseEscalated(case=case, followup=followup)
