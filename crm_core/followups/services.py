"""Evaluating follow-up rules: each rule is one query over due times in the database.

A rule fires once per subject: the FollowUpTask row is inserted with
``ON CONFLICT DO NOTHING`` on UNIQUE(rule, subject_type, subject_id), and only
the transaction whose insert returned a row records the Activity, the
follow-up e-mail and the notifications. Two beats evaluating at once therefore
fire each (rule, subject) exactly once: the second one's insert waits for the
first to commit and then inserts nothing.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import exists, func, select, tuple_
from sqlalchemy.orm import Session

from crm_core.activities.models import Activity, ActivityType, Direction
from crm_core.base.pagination import Page, cursor_time, decode_cursor, encode_cursor
from crm_core.base.serialize import to_dict
from crm_core.bounces.suppression import is_suppressed
from crm_core.campaigns.templates import compile_templates, contact_context, customer_context
from crm_core.customers.models import Contact, Customer, LifecycleStage
from crm_core.db import dialect_insert, utcnow
from crm_core.errors import FieldError, InvalidInput
from crm_core.followups.models import FollowUpStatus, FollowUpTask, SubjectType
from crm_core.followups.rules import (
    CaseFirstResponseOverdue,
    LeadNoOutbound,
    OpportunityIdle,
    RuleSet,
)
from crm_core.mail_transport.messages import AutoSubmitted, new_message_id
from crm_core.notifications.events import CaseEscalated, CaseSummary, FollowUp, FollowUpCreated
from crm_core.notifications.services import notify
from crm_core.people import audit
from crm_core.people.permissions import Actor, Permission
from crm_core.sales.models import Opportunity, OpportunityStage
from crm_core.support.models import CaseStatus, SupportCase

OPEN_CASE = (CaseStatus.NEW, CaseStatus.OPEN, CaseStatus.PENDING)
CLOSED_DEAL = (OpportunityStage.WON, OpportunityStage.LOST)
DEFAULT_BATCH = 200


@dataclass
class Fired:
    """What one rule did to one subject."""

    rule: str
    subject_type: str
    subject_id: int
    task_id: int
    activity_ids: list[int] = field(default_factory=list)
    notification_ids: list[int] = field(default_factory=list)
    email_activity_id: int | None = None


def evaluate(
    session: Session,
    rules: RuleSet,
    *,
    sender: str,
    now: dt.datetime | None = None,
    limit: int = DEFAULT_BATCH,
) -> list[Fired]:
    """Fire every enabled rule on up to ``limit`` due subjects each."""
    moment = now or utcnow()
    fired: list[Fired] = []
    for rule in rules.active:
        fired += evaluate_rule(session, rule, sender=sender, now=moment, limit=limit)
    return fired


def evaluate_rule(
    session: Session,
    rule: LeadNoOutbound | CaseFirstResponseOverdue | OpportunityIdle,
    *,
    sender: str,
    now: dt.datetime,
    limit: int = DEFAULT_BATCH,
) -> list[Fired]:
    """Fire ``rule`` on the subjects that are due and have not had it yet."""
    fired: list[Fired] = []
    for subject_id in due_subjects(session, rule, now=now, limit=limit):
        outcome = _fire(session, rule, subject_id, sender=sender, now=now)
        if outcome is not None:
            fired.append(outcome)
    return fired


def _not_fired(rule: str, subject_type: SubjectType, subject_id: Any) -> Any:
    return ~exists().where(
        FollowUpTask.rule == rule,
        FollowUpTask.subject_type == subject_type,
        FollowUpTask.subject_id == subject_id,
    )


def due_subjects(
    session: Session,
    rule: LeadNoOutbound | CaseFirstResponseOverdue | OpportunityIdle,
    *,
    now: dt.datetime,
    limit: int = DEFAULT_BATCH,
) -> list[int]:
    """Ids of the subjects ``rule`` is due on, oldest first (one query)."""
    cutoff = now - rule.after
    if isinstance(rule, LeadNoOutbound):
        wrote_to = exists().where(
            Activity.contact_id == Contact.id, Activity.direction == Direction.OUTBOUND
        )
        query = (
            select(Contact.id)
            .join(Customer, Customer.id == Contact.customer_id)
            .where(
                Customer.lifecycle_stage == LifecycleStage.LEAD,
                Contact.created_at <= cutoff,
                ~wrote_to,
                _not_fired(rule.name, SubjectType.CONTACT, Contact.id),
            )
            .order_by(Contact.id)
        )
    elif isinstance(rule, CaseFirstResponseOverdue):
        query = (
            select(SupportCase.id)
            .where(
                SupportCase.status.in_(OPEN_CASE),
                SupportCase.first_responded_at.is_(None),
                SupportCase.first_response_due_at <= cutoff,
                _not_fired(rule.name, SubjectType.SUPPORT_CASE, SupportCase.id),
            )
            .order_by(SupportCase.id)
        )
    else:
        last_activity = (
            select(func.max(Activity.occurred_at))
            .where(Activity.opportunity_id == Opportunity.id)
            .scalar_subquery()
        )
        query = (
            select(Opportunity.id)
            .where(
                Opportunity.stage.not_in(CLOSED_DEAL),
                func.coalesce(last_activity, Opportunity.created_at) <= cutoff,
                _not_fired(rule.name, SubjectType.OPPORTUNITY, Opportunity.id),
            )
            .order_by(Opportunity.id)
        )
    return list(session.scalars(query.limit(limit)))


def _claim(
    session: Session, *, rule: str, subject_type: SubjectType, subject_id: int, **values: Any
) -> int | None:
    """Insert the rule's task for the subject; its id, or None when it already fired."""
    statement = (
        dialect_insert(session, FollowUpTask)
        .values(
            rule=rule,
            subject_type=subject_type,
            subject_id=subject_id,
            status=FollowUpStatus.OPEN,
            **values,
        )
        .on_conflict_do_nothing(index_elements=["rule", "subject_type", "subject_id"])
        .returning(FollowUpTask.id)
    )
    return session.execute(statement).scalar()


def _fire(
    session: Session,
    rule: LeadNoOutbound | CaseFirstResponseOverdue | OpportunityIdle,
    subject_id: int,
    *,
    sender: str,
    now: dt.datetime,
) -> Fired | None:
    if isinstance(rule, LeadNoOutbound):
        return _fire_lead(session, rule, subject_id, sender=sender, now=now)
    if isinstance(rule, CaseFirstResponseOverdue):
        return _fire_case(session, rule, subject_id, now=now)
    return _fire_opportunity(session, rule, subject_id, now=now)


def _record(session: Session, activity: Activity) -> int:
    session.add(activity)
    session.flush()
    return activity.id


def _announce(session: Session, fired: Fired, task: dict[str, Any], now: dt.datetime) -> None:
    fired.notification_ids += notify(
        session, FollowUpCreated(followup=FollowUp.model_validate(task)), now=now
    )


def _fire_lead(
    session: Session, rule: LeadNoOutbound, contact_id: int, *, sender: str, now: dt.datetime
) -> Fired | None:
    contact = session.get(Contact, contact_id)
    if contact is None:
        return None
    customer = session.get(Customer, contact.customer_id)
    name = contact.full_name or contact.email or contact.phone or f"contact #{contact.id}"
    title = f"Follow up with {name}: no one wrote within {_human(rule.after)}"
    task_id = _claim(
        session,
        rule=rule.name,
        subject_type=SubjectType.CONTACT,
        subject_id=contact.id,
        customer_id=contact.customer_id,
        contact_id=contact.id,
        owner=(customer.owner if customer else None) or rule.owner,
        title=title,
        due_at=contact.created_at + rule.after,
    )
    if task_id is None:
        return None
    fired = Fired(rule.name, SubjectType.CONTACT, contact.id, task_id)
    fired.activity_ids.append(
        _record(
            session,
            Activity(
                type=ActivityType.FOLLOWUP_DUE,
                summary=title[:500],
                details={"rule": rule.name, "followup_task_id": task_id},
                customer_id=contact.customer_id,
                contact_id=contact.id,
                occurred_at=now,
            ),
        )
    )
    if rule.sends_email and contact.email and customer is not None:
        fired.email_activity_id = _follow_up_email(
            session, rule, contact, customer, sender=sender, now=now
        )
    _announce(session, fired, _task_dict(session, task_id), now)
    return fired


def _follow_up_email(
    session: Session,
    rule: LeadNoOutbound,
    contact: Contact,
    customer: Customer,
    *,
    sender: str,
    now: dt.datetime,
) -> int | None:
    """Record the rule's e-mail to the contact as pending; sent after the commit."""
    assert rule.email_subject is not None
    assert rule.email_text is not None
    if contact.email_normalized and is_suppressed(
        session, email_normalized=contact.email_normalized
    ):
        return None
    templates = compile_templates(subject=rule.email_subject, text=rule.email_text)
    try:
        rendered = templates.render(
            contact=contact_context(contact),
            customer=customer_context(customer),
            unsubscribe_url="",
        )
    except InvalidInput:
        return None  # a template that fails for this contact sends nothing to them
    message_id = new_message_id(sender)
    return _record(
        session,
        Activity(
            type=ActivityType.EMAIL_SENT,
            direction=Direction.OUTBOUND,
            summary=rendered.subject[:500],
            message_id=message_id.strip("<>"),
            details={
                "followup_rule": rule.name,
                "delivery": "pending",
                "to": contact.email,
                "subject": rendered.subject,
                "text": rendered.text,
                "message_id": message_id,
                "auto_submitted": AutoSubmitted.GENERATED.value,
            },
            customer_id=contact.customer_id,
            contact_id=contact.id,
            occurred_at=now,
        ),
    )


def _fire_case(
    session: Session, rule: CaseFirstResponseOverdue, case_id: int, *, now: dt.datetime
) -> Fired | None:
    case = session.get(SupportCase, case_id)
    if case is None or case.first_response_due_at is None:
        return None
    title = f"Case #{case.id} has had no first response: {case.subject}"
    task_id = _claim(
        session,
        rule=rule.name,
        subject_type=SubjectType.SUPPORT_CASE,
        subject_id=case.id,
        customer_id=case.customer_id,
        contact_id=case.contact_id,
        support_case_id=case.id,
        owner=case.assignee or rule.owner,
        title=title[:2000],
        due_at=case.first_response_due_at + rule.after,
    )
    if task_id is None:
        return None
    fired = Fired(rule.name, SubjectType.SUPPORT_CASE, case.id, task_id)
    overdue = now - case.first_response_due_at
    fired.activity_ids.append(
        _record(
            session,
            Activity(
                type=ActivityType.CASE_ESCALATED,
                summary=f"Case #{case.id} escalated: first response overdue by {_human(overdue)}",
                details={"rule": rule.name, "followup_task_id": task_id},
                customer_id=case.customer_id,
                contact_id=case.contact_id,
                support_case_id=case.id,
                occurred_at=now,
            ),
        )
    )
    task = _task_dict(session, task_id)
    if rule.notify:
        fired.notification_ids += notify(
            session,
            CaseEscalated(
                case=CaseSummary.model_validate(case), followup=FollowUp.model_validate(task)
            ),
            now=now,
        )
    _announce(session, fired, task, now)
    return fired


def _fire_opportunity(
    session: Session, rule: OpportunityIdle, opportunity_id: int, *, now: dt.datetime
) -> Fired | None:
    opportunity = session.get(Opportunity, opportunity_id)
    if opportunity is None:
        return None
    customer = session.get(Customer, opportunity.customer_id)
    title = f"Opportunity {opportunity.name!r} idle for {_human(rule.after)}"
    task_id = _claim(
        session,
        rule=rule.name,
        subject_type=SubjectType.OPPORTUNITY,
        subject_id=opportunity.id,
        customer_id=opportunity.customer_id,
        contact_id=opportunity.contact_id,
        opportunity_id=opportunity.id,
        owner=opportunity.owner or (customer.owner if customer else None) or rule.owner,
        title=title[:2000],
        due_at=now,
    )
    if task_id is None:
        return None
    fired = Fired(rule.name, SubjectType.OPPORTUNITY, opportunity.id, task_id)
    fired.activity_ids.append(
        _record(
            session,
            Activity(
                type=ActivityType.FOLLOWUP_DUE,
                summary=title[:500],
                details={"rule": rule.name, "followup_task_id": task_id},
                customer_id=opportunity.customer_id,
                contact_id=opportunity.contact_id,
                opportunity_id=opportunity.id,
                occurred_at=now,
            ),
        )
    )
    _announce(session, fired, _task_dict(session, task_id), now)
    return fired


def _human(delta: dt.timedelta) -> str:
    seconds = int(delta.total_seconds())
    for unit, size in (("d", 86_400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds // size}{unit}"
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60}m"
    return f"{seconds}s"


def _task_dict(session: Session, task_id: int) -> dict[str, Any]:
    task = session.get(FollowUpTask, task_id)
    assert task is not None
    return to_dict(task)


# Reading and closing tasks.


def get_followup(session: Session, *, followup_id: int) -> dict[str, Any] | None:
    """One follow-up task, as the list shows it; None when there is none."""
    task = session.get(FollowUpTask, followup_id)
    return to_dict(task) if task is not None else None


def list_followups(session: Session, *, status: str | None, cursor: str | None, limit: int) -> Page:
    """Follow-up tasks, the longest-due first; ``status`` one of open, done, cancelled."""
    if status is not None and status not in set(FollowUpStatus):
        known = ", ".join(FollowUpStatus)
        raise InvalidInput([FieldError(("status",), f"must be one of {known}")])
    after = decode_cursor(cursor, length=2)
    query = select(FollowUpTask).order_by(FollowUpTask.due_at, FollowUpTask.id).limit(limit + 1)
    if status is not None:
        query = query.where(FollowUpTask.status == status)
    if after is not None:
        moment = cursor_time(after[0])
        query = query.where(tuple_(FollowUpTask.due_at, FollowUpTask.id) > tuple_(moment, after[1]))
    rows = list(session.scalars(query))
    more = len(rows) > limit
    rows = rows[:limit]
    last = rows[-1] if rows else None
    return Page(
        items=[to_dict(task) for task in rows],
        next=encode_cursor([last.due_at.isoformat(), last.id]) if more and last else None,
    )


def close_followup(
    session: Session,
    *,
    actor: Actor,
    task_id: int,
    status: FollowUpStatus,
    now: dt.datetime | None = None,
) -> dict[str, Any] | None:
    """Mark a task done or cancelled (idempotent, audited); None when there is no such task."""
    actor.require(Permission.WRITE)
    task = session.get(FollowUpTask, task_id, with_for_update=True)
    if task is None:
        return None
    if task.status == FollowUpStatus.OPEN:
        task.status = status
        task.completed_at = now or utcnow()
        session.flush()
        changes = audit.changes_between(
            {"status": FollowUpStatus.OPEN.value, "completed_at": None},
            {"status": task.status, "completed_at": task.completed_at},
        )
        audit.record(
            session,
            actor=actor,
            entity="followup",
            entity_id=task.id,
            action="update",
            changes=changes,
        )
    return to_dict(task)
