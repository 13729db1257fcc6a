"""Replies from a case: threaded headers, the case token, on record before they leave.

``send_case_reply`` is a workflow rather than a service: it commits between its
steps, because the reply must be on the timeline (and the SLA timer stopped)
before the message leaves, and its delivery outcome recorded after.
"""

from __future__ import annotations

from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from crm_core.activities.models import Activity, ActivityType, Direction
from crm_core.bounces.models import SentKind
from crm_core.bounces.services import SentRecord, record_provider_id, record_sent
from crm_core.db import utcnow
from crm_core.errors import FieldError, InvalidInput
from crm_core.mail import CaseTokens, normalize_message_id, without_case_tokens
from crm_core.mail_transport.base import MailBackend
from crm_core.mail_transport.messages import OutboundMail, build_message
from crm_core.people import audit
from crm_core.people.permissions import Actor, Permission
from crm_core.support.lifecycle import change_case_status
from crm_core.support.models import CaseStatus, SupportCase
from crm_core.support.pending_mail import send_one

# References carry the root and the most recent messages; a thread can be long.
MAX_REFERENCES = 20
_EMAIL_TYPES = (ActivityType.EMAIL_RECEIVED, ActivityType.EMAIL_SENT)


class CaseNotFound(LookupError):
    """No support case with that id."""


@dataclass(frozen=True)
class ReplyOutcome:
    activity_id: int
    message_id: str
    delivery: str  # sent | failed | unknown
    error: str | None = None


def reply_subject(case: SupportCase, tokens: CaseTokens) -> str:
    """``Re: <subject> [Case #N-tag]``, without doubling either part.

    Any case token already in the subject (a customer's bare ``[Case #N]``) goes:
    the reply carries only the signed one.
    """
    subject = without_case_tokens(case.subject) or "(no subject)"
    if not subject.lower().startswith("re:"):
        subject = f"Re: {subject}"
    return f"{subject} {tokens.token(case.id)}"


def thread_ids(session: Session, case: SupportCase) -> list[str]:
    """The case's Message-IDs, oldest first, the root first."""
    query = (
        select(Activity.message_id)
        .where(
            Activity.support_case_id == case.id,
            Activity.type.in_(_EMAIL_TYPES),
            Activity.message_id.is_not(None),
        )
        .order_by(Activity.occurred_at, Activity.id)
    )
    ids: dict[str, None] = {}
    if case.root_message_id:
        ids[case.root_message_id] = None
    for message_id in session.scalars(query):
        if message_id:
            ids.setdefault(message_id)
    return list(ids)


def prepare_reply(
    session: Session,
    *,
    case_id: int,
    body: str,
    html: str | None,
    sender: str,
    case_tokens: CaseTokens,
) -> tuple[Activity, EmailMessage]:
    """Record an outbound reply on the case and build its message (not yet sent).

    Its Message-ID is recorded as sent, so a report of its failure can be verified.
    """
    case = session.get(SupportCase, case_id) if 0 < case_id < 2**63 else None
    if case is None:
        raise CaseNotFound(f"no case {case_id}")
    if not body.strip():
        raise InvalidInput([FieldError(("body",), "a reply needs a body")])
    contact = case.contact
    if contact is None or not contact.email_normalized:
        raise InvalidInput([FieldError(("case",), "the case's contact has no e-mail address")])
    thread = thread_ids(session, case)
    references = thread[:1] + thread[1:][-(MAX_REFERENCES - 1) :] if thread else []
    mail = OutboundMail(
        sender=sender,
        to=contact.email or contact.email_normalized,
        subject=reply_subject(case, case_tokens),
        text=body,
        html=html,
        in_reply_to=f"<{thread[-1]}>" if thread else None,
        references=tuple(f"<{ref}>" for ref in references),
    )
    message = build_message(mail)
    message_id = normalize_message_id(message["Message-ID"]) or ""
    first_response = case.first_responded_at is None
    if case.status == CaseStatus.NEW:  # answering a new case opens it; the reply comes after
        change_case_status(session, case, CaseStatus.OPEN, why="replied")
    activity = Activity(
        type=ActivityType.EMAIL_SENT,
        direction=Direction.OUTBOUND,
        summary=str(message["Subject"])[:500],
        details={
            "to": mail.to,
            "text": body,
            "html": html,
            "delivery": "sending",
            "first_response": first_response,
        },
        message_id=message_id,
        customer_id=case.customer_id,
        contact_id=case.contact_id,
        support_case_id=case.id,
    )
    session.add(activity)
    record_sent(session, [SentRecord(message_id, contact.email_normalized, SentKind.CASE_REPLY)])
    if first_response:
        case.first_responded_at = utcnow()
    session.flush()
    return activity, message


def record_delivery(
    session: Session, *, activity_id: int, delivery: str, provider_id: str | None, error: str | None
) -> None:
    """Note how the reply's delivery went; a reply that surely failed restarts the SLA timer."""
    activity = session.get(Activity, activity_id)
    assert activity is not None
    details: dict[str, Any] = {**activity.details, "delivery": delivery}
    if provider_id:
        details["provider_id"] = provider_id
        # A provider's delivery report finds the reply by the id its API gave it.
        record_provider_id(
            session, message_id=activity.message_id or "", provider_message_id=provider_id
        )
    if error:
        details["error"] = error[:1000]
    activity.details = details
    if delivery == "failed" and details.get("first_response") and activity.support_case_id:
        case = session.get(SupportCase, activity.support_case_id)
        if case is not None:
            case.first_responded_at = None


def send_case_reply(
    sessions: sessionmaker[Session],
    backend: MailBackend,
    *,
    actor: Actor,
    case_id: int,
    body: str,
    html: str | None,
    sender: str,
    case_tokens: CaseTokens,
) -> ReplyOutcome:
    """Record, send, and record the outcome of a reply to case ``case_id``.

    The audit entry is in the first transaction, with the reply it records: a reply that
    is on the timeline is in the audit log, whatever its delivery.
    """
    actor.require(Permission.REPLY)
    with sessions.begin() as session:
        before = _audited_case(session, case_id)
        activity, message = prepare_reply(
            session,
            case_id=case_id,
            body=body,
            html=html,
            sender=sender,
            case_tokens=case_tokens,
        )
        activity_id, message_id = activity.id, activity.message_id or ""
        _record_reply(session, actor, case_id, before, activity)
    delivery, provider_id, error = send_one(
        backend, message, idempotency_key=f"reply-{activity_id}"
    )
    with sessions.begin() as session:
        record_delivery(
            session,
            activity_id=activity_id,
            delivery=delivery,
            provider_id=provider_id,
            error=error,
        )
    return ReplyOutcome(activity_id, message_id, delivery, error)


_AUDITED_CASE = ("status", "first_responded_at")


def _audited_case(session: Session, case_id: int) -> dict[str, Any]:
    case = session.get(SupportCase, case_id) if 0 < case_id < 2**63 else None
    return {name: getattr(case, name) for name in _AUDITED_CASE} if case else {}


def _record_reply(
    session: Session, actor: Actor, case_id: int, before: dict[str, Any], reply: Activity
) -> None:
    """One audit entry on the case: the reply (not its text) and what it changed."""
    case = session.get(SupportCase, case_id)
    assert case is not None
    after = {name: getattr(case, name) for name in _AUDITED_CASE}
    changes = audit.changes_between(before, after)
    changes.update(
        audit.created(
            {"reply_activity_id": reply.id, "to": reply.details["to"], "subject": reply.summary}
        )
    )
    audit.record(
        session,
        actor=actor,
        entity="support_case",
        entity_id=case_id,
        action="reply",
        changes=changes,
    )
