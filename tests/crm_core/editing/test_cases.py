"""Cases changed by people: allowed transitions, SLA follows priority, assignees are users."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from crm_core.activities.models import Activity, ActivityType
from crm_core.editing import cases
from crm_core.editing.records import RecordConflict, RecordNotFound
from crm_core.errors import InvalidInput
from crm_core.people.models import AuditEntry
from crm_core.people.permissions import Actor, PermissionDenied
from crm_core.support.sla import SlaPolicy
from tests.factories import SupportCaseFactory, UserFactory

AGENT = Actor.for_user(user_id=1, email="agent@example.com", role="agent")
SLA = SlaPolicy(first_response_hours={"urgent": 1, "high": 4, "normal": 24, "low": 72})
OPENED = dt.datetime(2026, 12, 1, 9, 0, tzinfo=dt.UTC)


def _update(session: Session, case_id: int, document: object, actor: Actor = AGENT):  # type: ignore[no-untyped-def]
    return cases.update_case(session, actor=actor, case_id=case_id, document=document, sla=SLA)


@pytest.mark.parametrize(
    ("start", "goal", "allowed"),
    [
        ("new", "open", True),
        ("open", "pending", True),
        ("pending", "open", True),
        ("open", "resolved", True),
        ("resolved", "closed", True),
        ("resolved", "open", True),
        ("closed", "open", True),
        ("open", "new", False),
        ("closed", "resolved", False),
        ("closed", "pending", False),
    ],
)
def test_status_follows_the_allowed_transitions(
    session: Session, start: str, goal: str, allowed: bool
) -> None:
    case = SupportCaseFactory(status=start)
    if not allowed:
        with pytest.raises(
            RecordConflict, match=f"the case is {start} and cannot become {goal}"
        ) as refused:
            _update(session, case.id, {"status": goal})
        assert refused.value.field == "status"
        return
    _update(session, case.id, {"status": goal})
    assert case.status == goal
    assert (case.resolved_at is not None) is (goal in ("resolved", "closed"))
    activity = session.scalars(select(Activity).where(Activity.support_case_id == case.id)).one()
    assert activity.type == ActivityType.CASE_STATUS_CHANGED
    assert activity.details == {"from": start, "to": goal}


def test_a_new_priority_moves_the_first_response_due_time(session: Session) -> None:
    case = SupportCaseFactory(
        priority="normal", created_at=OPENED, first_response_due_at=OPENED + dt.timedelta(hours=24)
    )
    _update(session, case.id, {"priority": "urgent"})
    assert case.first_response_due_at == OPENED + dt.timedelta(hours=1)
    entry = session.scalars(select(AuditEntry).where(AuditEntry.entity == "support_case")).one()
    assert set(entry.changes) == {"priority", "first_response_due_at"}
    # Once answered, the kept promise stays as it was.
    case.first_responded_at = OPENED + dt.timedelta(minutes=30)
    _update(session, case.id, {"priority": "low"})
    assert case.first_response_due_at == OPENED + dt.timedelta(hours=1)


def test_the_assignee_is_an_active_agent_or_admin(session: Session) -> None:
    UserFactory(email="ann@example.com", role="agent")
    UserFactory(email="vic@example.com", role="viewer")
    UserFactory(email="old@example.com", role="admin", disabled_at=OPENED)
    case = SupportCaseFactory()
    _update(session, case.id, {"assignee": "Ann@Example.com"})
    assert case.assignee == "ann@example.com"
    for nobody in ("vic@example.com", "old@example.com", "ghost@example.com"):
        with pytest.raises(InvalidInput) as refused:
            _update(session, case.id, {"assignee": nobody})
        assert refused.value.errors[0].field == "assignee"
    _update(session, case.id, {"assignee": None})
    assert case.assignee is None


def test_bad_patches_and_permissions(session: Session) -> None:
    case = SupportCaseFactory()
    with pytest.raises(InvalidInput) as refused:
        _update(session, case.id, {"status": None, "priority": "whenever", "colour": 1})
    assert {e.field for e in refused.value.errors} == {"priority", "colour"}
    with pytest.raises(InvalidInput, match="status: cannot be null"):
        _update(session, case.id, {"status": None})
    with pytest.raises(RecordNotFound):
        _update(session, 999_999, {})
    viewer = Actor.for_user(user_id=2, email="v@example.com", role="viewer")
    with pytest.raises(PermissionDenied):
        _update(session, case.id, {"status": "pending"}, actor=viewer)
    assert case.status == "open"
