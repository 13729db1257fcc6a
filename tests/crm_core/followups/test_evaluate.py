"""Each rule's query and what firing it records, once per (rule, subject)."""

from __future__ import annotations

import datetime as dt

from jsonschema import Draft202012Validator
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from crm_core import models as m
from crm_core.bounces.suppression import suppress
from crm_core.followups.rules import RuleSet, parse_rules
from crm_core.followups.services import close_followup, evaluate, list_followups
from crm_core.notifications.events import envelope_schema
from crm_core.notifications.services import add_subscription
from crm_core.people.permissions import Actor
from tests.factories import (
    ContactFactory,
    CustomerFactory,
    OpportunityFactory,
    SupportCaseFactory,
)

NOW = dt.datetime(2026, 6, 1, 12, 0, tzinfo=dt.UTC)
OPERATOR = Actor.operator("test")
SENDER = "CRM <crm@acme.test>"

RULES = parse_rules(
    """
[[rule]]
name = "lead"
kind = "lead_no_outbound"
after = "1h"
owner = "sales@acme.test"

[[rule]]
name = "case"
kind = "case_first_response_overdue"
after = "10m"

[[rule]]
name = "deal"
kind = "opportunity_idle"
after = "7d"
"""
)

LEAD_WITH_EMAIL = parse_rules(
    """
[[rule]]
name = "lead-mail"
kind = "lead_no_outbound"
after = "1h"
email_subject = "Still interested, {{ contact.first_name }}?"
email_text = "Hello {{ contact.first_name }} at {{ customer.name }}"
"""
)


def ago(**kwargs: float) -> dt.datetime:
    return NOW - dt.timedelta(**kwargs)


def run(session: Session, rules: RuleSet = RULES) -> list[tuple[str, int]]:
    return [(f.rule, f.subject_id) for f in evaluate(session, rules, sender=SENDER, now=NOW)]


def count(session: Session, model: type, *where: object) -> int:
    return session.scalar(select(func.count()).select_from(model).where(*where)) or 0


def test_a_lead_nobody_wrote_to_fires_once(session: Session) -> None:
    lead = ContactFactory(created_at=ago(hours=2))
    ContactFactory(created_at=ago(minutes=30))  # not yet due
    customer = CustomerFactory(lifecycle_stage=m.LifecycleStage.CUSTOMER)
    ContactFactory(customer=customer, created_at=ago(days=3))  # not a lead

    assert run(session) == [("lead", lead.id)]
    assert run(session) == []

    task = session.scalars(select(m.FollowUpTask)).one()
    assert (task.subject_type, task.contact_id, task.status) == ("contact", lead.id, "open")
    assert task.owner == "sales@acme.test"  # the customer has no owner
    assert task.due_at == lead.created_at + dt.timedelta(hours=1)
    activity = session.scalars(
        select(m.Activity).where(m.Activity.type == m.ActivityType.FOLLOWUP_DUE)
    ).one()
    assert activity.contact_id == lead.id
    assert activity.details == {"rule": "lead", "followup_task_id": task.id}


def test_a_lead_someone_wrote_to_does_not_fire(session: Session) -> None:
    lead = ContactFactory(created_at=ago(hours=5))
    session.add(
        m.Activity(
            type=m.ActivityType.EMAIL_SENT,
            direction=m.Direction.OUTBOUND,
            summary="Hi",
            contact_id=lead.id,
            customer_id=lead.customer_id,
        )
    )
    session.flush()
    assert run(session) == []


def test_the_customer_owner_gets_the_task(session: Session) -> None:
    customer = CustomerFactory(owner="ada@acme.test")
    ContactFactory(customer=customer, created_at=ago(hours=2))
    run(session)
    assert session.scalars(select(m.FollowUpTask.owner)).one() == "ada@acme.test"


def test_a_lead_rule_with_a_template_records_one_pending_email(session: Session) -> None:
    customer = CustomerFactory(name="Jones Ltd")
    lead = ContactFactory(customer=customer, first_name="Bob", created_at=ago(hours=2))
    quiet = ContactFactory(created_at=ago(hours=2))
    suppress(session, email_normalized=quiet.email, reason=m.SuppressionReason.UNSUBSCRIBED)

    fired = evaluate(session, LEAD_WITH_EMAIL, sender=SENDER, now=NOW)

    by_contact = {f.subject_id: f for f in fired}
    assert by_contact[quiet.id].email_activity_id is None  # suppressed: a task, no mail
    email = session.get(m.Activity, by_contact[lead.id].email_activity_id)
    assert email is not None
    assert email.direction == m.Direction.OUTBOUND
    assert email.details["delivery"] == "pending"
    assert email.details["to"] == lead.email
    assert email.details["subject"] == "Still interested, Bob?"
    assert email.details["text"] == "Hello Bob at Jones Ltd"
    assert email.details["auto_submitted"] == "auto-generated"
    assert evaluate(session, LEAD_WITH_EMAIL, sender=SENDER, now=NOW) == []
    assert count(session, m.Activity, m.Activity.type == m.ActivityType.EMAIL_SENT) == 1


def overdue_case(session: Session, *, due: dt.datetime, **values: object) -> m.SupportCase:
    case = SupportCaseFactory(first_response_due_at=due, **values)
    session.flush()
    return case


def test_an_overdue_case_is_escalated_once_and_subscribers_are_told(session: Session) -> None:
    hook = add_subscription(session, url="https://hooks.example/crm", events=["case.escalated"])
    every = add_subscription(session, url="https://all.example/crm", events=["*"])
    other = add_subscription(session, url="https://other.example/crm", events=["followup.created"])
    case = overdue_case(session, due=ago(minutes=15), assignee="ben@acme.test")
    overdue_case(session, due=ago(minutes=5))  # within the rule's 10 minutes
    overdue_case(session, due=ago(hours=1), first_responded_at=ago(minutes=50))
    overdue_case(session, due=ago(hours=1), status=m.CaseStatus.RESOLVED)

    assert run(session) == [("case", case.id)]
    assert run(session) == []

    escalation = session.scalars(
        select(m.Activity).where(m.Activity.type == m.ActivityType.CASE_ESCALATED)
    ).one()
    assert escalation.support_case_id == case.id
    assert "overdue by 15m" in escalation.summary
    task = session.scalars(select(m.FollowUpTask)).one()
    assert (task.support_case_id, task.owner) == (case.id, "ben@acme.test")
    deliveries = session.scalars(
        select(m.NotificationDelivery).order_by(m.NotificationDelivery.id)
    ).all()
    # case.escalated to the first two; followup.created to the last two.
    assert sorted((d.subscription_id, d.event_type) for d in deliveries) == sorted(
        [
            (hook.id, "case.escalated"),
            (every.id, "case.escalated"),
            (every.id, "followup.created"),
            (other.id, "followup.created"),
        ]
    )
    escalated = next(d for d in deliveries if d.event_type == "case.escalated")
    assert escalated.payload["type"] == "case.escalated"
    assert escalated.payload["data"]["case"]["id"] == case.id
    assert escalated.payload["data"]["followup"]["id"] == task.id
    for delivery in deliveries:  # as published in docs/notifications.md
        Draft202012Validator(envelope_schema(delivery.event_type)).validate(delivery.payload)


def test_an_idle_opportunity_fires_once(session: Session) -> None:
    idle = OpportunityFactory(created_at=ago(days=30), owner="cy@acme.test")
    busy = OpportunityFactory(created_at=ago(days=30))
    session.add(
        m.Activity(
            type=m.ActivityType.NOTE,
            summary="call",
            occurred_at=ago(days=1),
            opportunity_id=busy.id,
            customer_id=busy.customer_id,
        )
    )
    OpportunityFactory(created_at=ago(days=30), stage=m.OpportunityStage.WON)
    OpportunityFactory(created_at=ago(days=1))
    session.flush()

    assert run(session) == [("deal", idle.id)]
    assert run(session) == []
    task = session.scalars(select(m.FollowUpTask)).one()
    assert (task.opportunity_id, task.owner) == (idle.id, "cy@acme.test")


def test_disabled_rules_do_not_fire(session: Session) -> None:
    rules = parse_rules(
        '[[rule]]\nname = "off"\nkind = "lead_no_outbound"\nafter = "0s"\nenabled = false'
    )
    ContactFactory(created_at=ago(days=1))
    assert run(session, rules) == []


def test_listing_and_closing_tasks(session: Session) -> None:
    for hours in (5, 4, 3):
        ContactFactory(created_at=ago(hours=hours))
    run(session)
    first = list_followups(session, status="open", cursor=None, limit=2)
    assert len(first.items) == 2
    assert first.next is not None
    second = list_followups(session, status="open", cursor=first.next, limit=2)
    assert len(second.items) == 1
    assert second.next is None
    ids = [t["id"] for t in first.items + second.items]
    assert len(set(ids)) == 3
    # Longest-due first.
    dues = [t["due_at"] for t in first.items + second.items]
    assert dues == sorted(dues)

    done = close_followup(
        session, actor=OPERATOR, task_id=ids[0], status=m.FollowUpStatus.DONE, now=NOW
    )
    assert done is not None
    assert done["status"] == "done"
    again = close_followup(
        session, actor=OPERATOR, task_id=ids[0], status=m.FollowUpStatus.CANCELLED
    )
    assert again is not None
    assert again["status"] == "done"  # closing twice changes nothing
    assert (
        close_followup(session, actor=OPERATOR, task_id=999_999, status=m.FollowUpStatus.DONE)
        is None
    )
    # Closing is audited once: the second close changed nothing.
    [entry] = session.scalars(select(m.AuditEntry).where(m.AuditEntry.entity == "followup"))
    assert (entry.actor, entry.entity_id, entry.action) == ("operator:test", ids[0], "update")
    assert entry.changes["status"] == {"before": "open", "after": "done"}
    assert entry.changes["completed_at"]["before"] is None
    assert len(list_followups(session, status="open", cursor=None, limit=50).items) == 2
    assert len(list_followups(session, status="done", cursor=None, limit=50).items) == 1
