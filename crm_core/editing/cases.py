"""Support cases changed by people: status (along the allowed transitions), priority (the
first-response SLA recomputed), assignee (an active agent or admin) and tags.

A status change is also an Activity on the case's timeline, as when a help desk reports one.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy.orm import Session

from crm_core.db import utcnow
from crm_core.editing import records
from crm_core.editing.records import RecordConflict, RecordNotFound
from crm_core.editing.schemas import REQUIRED_ON_CASE, CasePatch, parse_patch
from crm_core.errors import FieldError, InvalidInput
from crm_core.people import audit
from crm_core.people.permissions import Actor, Permission, Role
from crm_core.people.users import find_user
from crm_core.support.lifecycle import assign_case, change_case_status
from crm_core.support.models import CaseStatus, SupportCase
from crm_core.support.sla import SlaPolicy

S = CaseStatus
# Where a case may go from each status. Resolved and closed cases may be reopened.
TRANSITIONS: dict[str, frozenset[str]] = {
    S.NEW: frozenset({S.OPEN, S.PENDING, S.RESOLVED, S.CLOSED}),
    S.OPEN: frozenset({S.PENDING, S.RESOLVED, S.CLOSED}),
    S.PENDING: frozenset({S.OPEN, S.RESOLVED, S.CLOSED}),
    S.RESOLVED: frozenset({S.OPEN, S.CLOSED}),
    S.CLOSED: frozenset({S.OPEN}),
}
AUDITED = ("status", "priority", "assignee", "tags", "first_response_due_at", "resolved_at")


def _status(session: Session, case: SupportCase, status: str, now: dt.datetime) -> None:
    if status == case.status:
        return
    if status not in TRANSITIONS[case.status]:
        allowed = ", ".join(sorted(TRANSITIONS[case.status]))
        raise RecordConflict(
            f"the case is {case.status} and cannot become {status}; it may become {allowed}",
            field="status",
        )
    change_case_status(session, case, status, now=now)


def _assignee(session: Session, actor: Actor, email: str | None) -> str | None:
    actor.require(Permission.ASSIGN)
    if email is None:
        return None
    user = find_user(session, email=email)
    if user is None or user.disabled_at is not None or user.role == Role.VIEWER:
        raise InvalidInput(
            [FieldError(("assignee",), "must be an active agent's or admin's address")]
        )
    return user.email


def update_case(
    session: Session,
    *,
    actor: Actor,
    case_id: int,
    document: Any,
    sla: SlaPolicy,
    now: dt.datetime | None = None,
) -> SupportCase:
    """Change a case's status, priority, assignee or tags (a JSON merge patch)."""
    actor.require(Permission.WRITE)
    patch, sent = parse_patch(CasePatch, document, not_null=REQUIRED_ON_CASE)
    case = session.get(SupportCase, case_id, with_for_update=True)
    if case is None:
        raise RecordNotFound("case", case_id)
    now = now or utcnow()
    before = records.snapshot(case, AUDITED)
    if "assignee" in sent:
        assign_case(session, case, _assignee(session, actor, patch.assignee))
    if patch.status is not None:
        _status(session, case, patch.status, now)
    if "tags" in sent:
        case.tags = records.clean_tags(patch.tags or [])
    if patch.priority is not None and patch.priority != case.priority:
        case.priority = patch.priority
        # The promises not yet kept follow the priority, from when the case was opened.
        sla.apply(case, opened_at=case.opened_at or case.created_at or now)
    session.flush()
    changes = audit.changes_between(before, records.snapshot(case, AUDITED))
    if changes:
        audit.record(
            session,
            actor=actor,
            entity="support_case",
            entity_id=case.id,
            action="update",
            changes=changes,
        )
    return case
