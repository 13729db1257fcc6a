"""A case's life: opened, moved between statuses, assigned. One function for each change.

Whoever changes a case (a help-desk ticket, an e-mail, a reply, a person through the
API) calls these, so each change writes its timeline Activity and owes its
notification (``case.opened``, ``case.status_changed``, ``case.assigned``) in the
caller's transaction, the same way from every path.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy.orm import Session

from crm_core.activities.models import Activity, ActivityType, Direction
from crm_core.db import utcnow
from crm_core.notifications.events import CaseAssigned, CaseOpened, CaseStatusChanged, CaseSummary
from crm_core.notifications.services import notify
from crm_core.support.models import CaseStatus, SupportCase

DONE = (CaseStatus.RESOLVED, CaseStatus.CLOSED)


def case_opened(
    session: Session,
    case: SupportCase,
    *,
    summary: str,
    details: dict[str, object] | None = None,
    event_id: int | None = None,
) -> Activity:
    """Record that a (flushed) case was opened: its ``case_opened`` Activity and notification."""
    activity = Activity(
        type=ActivityType.CASE_OPENED,
        direction=Direction.INBOUND,
        summary=summary[:500],
        details=details or {},
        customer_id=case.customer_id,
        contact_id=case.contact_id,
        support_case_id=case.id,
        event_id=event_id,
    )
    session.add(activity)
    session.flush()
    notify(session, CaseOpened(case=CaseSummary.model_validate(case)))
    return activity


def change_case_status(
    session: Session,
    case: SupportCase,
    status: str,
    *,
    now: dt.datetime | None = None,
    event_id: int | None = None,
    why: str = "",
) -> Activity | None:
    """Move ``case`` to ``status`` (``resolved_at`` follows), with its Activity and notification.

    ``None`` when the case already has that status. Which moves are allowed is the
    caller's rule (people follow ``editing.cases.TRANSITIONS``; help desks are believed).
    """
    previous = case.status
    if status == previous:
        return None
    moment = now or utcnow()
    activity = Activity(
        type=ActivityType.CASE_STATUS_CHANGED,
        direction=Direction.INTERNAL,
        summary=f"Case #{case.id}: {previous} → {status}{f' ({why})' if why else ''}"[:500],
        details={"from": previous, "to": status},
        customer_id=case.customer_id,
        contact_id=case.contact_id,
        support_case_id=case.id,
        occurred_at=moment,
        event_id=event_id,
    )
    case.status = status
    if status in DONE and case.resolved_at is None:
        case.resolved_at = moment
    elif status not in DONE:
        case.resolved_at = None  # reopened
    session.add(activity)
    session.flush()
    notify(
        session,
        CaseStatusChanged(
            case=CaseSummary.model_validate(case), previous_status=previous, status=status
        ),
    )
    return activity


def assign_case(session: Session, case: SupportCase, assignee: str | None) -> bool:
    """Give ``case`` to ``assignee`` (``None``: nobody), notifying; False if unchanged."""
    previous = case.assignee
    if assignee == previous:
        return False
    case.assignee = assignee
    session.flush()
    notify(
        session,
        CaseAssigned(
            case=CaseSummary.model_validate(case), previous_assignee=previous, assignee=assignee
        ),
    )
    return True
