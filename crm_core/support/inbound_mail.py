"""Inbound e-mail: thread it, file it, record it — the decision and its reason kept.

Threading, in order: In-Reply-To/References against stored Message-IDs; a
stored reply that names this message (it was processed first); a case token
in the subject; a new case when addressed to support (never for
auto-generated mail); otherwise an Activity on the sender's contact.

A case number alone opens nothing to anyone: a ``[Case #N]`` token files a
message on case N only when it carries the case's keyed tag (``[Case
#N-tag]``, as our own mail does) or the sender is a contact of the case's
customer; otherwise the message opens a new case, and the reason says why.
The same rule decides whether a message reopens a resolved or closed case.

A message without a Message-ID is known by the key of its bytes, so a replay
of it is a duplicate like any other.

The order in which a thread's messages are processed does not matter: each
message takes a lock on every Message-ID it carries or names, so a message and
its reply are filed one after the other even by two workers at once, and
whichever comes second finds the first — by its Message-ID, or through the
references the first recorded.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from crm_core.activities.models import Activity, ActivityType, Direction, MessageReference
from crm_core.attachments.services import record_attachments
from crm_core.base.entities import EntityType
from crm_core.base.locks import lock_identities
from crm_core.base.touched import Touched
from crm_core.blobs import BlobStore
from crm_core.bounces.services import BouncePolicy, apply_bounce
from crm_core.customers.models import Contact
from crm_core.db import utcnow
from crm_core.mail import CaseTokens, ParsedEmail, addressed_to_support, thread_keys
from crm_core.support.auto_ack import AutoAckSettings, ack_refusal, record_auto_ack
from crm_core.support.lifecycle import case_opened, change_case_status
from crm_core.support.models import CaseChannel, CaseStatus, SupportCase
from crm_core.support.sla import SlaPolicy

# Finds the contact with this e-mail, or creates it (and its customer).
ContactResolver = Callable[[Session, str, str | None], tuple[Contact, Touched]]
# Finds the contact with this e-mail, or None: auto-generated mail creates nobody.
ContactFinder = Callable[[Session, str], Contact | None]


class ThreadDecision(enum.StrEnum):
    REPLY_TO_CASE = "reply_to_case"
    REPLY_TO_MESSAGE = "reply_to_message"
    PARENT_OF_REPLY = "parent_of_reply"
    CASE_TOKEN = "case_token"  # noqa: S105 (a decision, not a secret)
    NEW_CASE = "new_case"
    CONTACT_ACTIVITY = "contact_activity"
    DUPLICATE = "duplicate"
    BOUNCE = "bounce"
    BOUNCE_UNVERIFIED = "bounce_unverified"
    AUTO_GENERATED = "auto_generated"
    NO_SENDER = "no_sender"


@dataclass(frozen=True)
class MailOutcome:
    decision: ThreadDecision
    reason: str
    touched: Touched


@dataclass(frozen=True)
class MailContext:
    """What a receiving step needs besides the message."""

    source_id: int | None
    event_id: int | None
    support_addresses: Iterable[str]
    sla: SlaPolicy
    resolve_contact: ContactResolver
    find_contact: ContactFinder
    auto_ack: AutoAckSettings | None = None
    # Signs and checks the case tokens of subjects (keyed by CRM_SECRET_KEY).
    case_tokens: CaseTokens = field(kw_only=True)
    bounces: BouncePolicy = field(default=BouncePolicy(), kw_only=True)
    # Where attachments' bytes are kept; None records no attachment (only the details).
    blobs: BlobStore | None = field(default=None, kw_only=True)


def receive_email(session: Session, *, parsed: ParsedEmail, context: MailContext) -> MailOutcome:
    """File one inbound e-mail; safe to call again with the same message."""
    lock_identities(session, (f"message-id:{key}" for key in _thread_identities(parsed)))
    duplicate = _seen_before(session, parsed)
    if duplicate is not None:
        return duplicate
    if parsed.bounce is not None:
        return _record_bounce(session, parsed, context)
    if not parsed.from_address:
        return MailOutcome(
            ThreadDecision.NO_SENDER, "the message has no usable From address", Touched()
        )
    threaded = _thread(session, parsed)
    refusal = None
    if threaded is None:
        threaded, refusal = _by_case_token(session, parsed, context)
    if threaded is not None:
        decision, reason, case, parent = threaded
        if case is None or _may_reopen(session, parsed, context, case):
            return _append(session, parsed, context, decision, reason, case=case, parent=parent)
        refusal = (
            f"case #{case.id} is {case.status}, and only its signed token or a contact of its"
            " customer reopens it"
        )
    if parsed.auto_generated:
        return _auto_generated(session, parsed, context)
    if refusal is not None:
        return _open_case(session, parsed, context, reason=f"{refusal}: a new case is opened")
    if addressed_to_support(parsed, context.support_addresses):
        return _open_case(session, parsed, context)
    reason = "not a reply to a known message, no case token, not addressed to support"
    return _append(session, parsed, context, ThreadDecision.CONTACT_ACTIVITY, reason)


def _seen_before(session: Session, parsed: ParsedEmail) -> MailOutcome | None:
    """The outcome of a message filed before: by its Message-ID, or the key of its bytes."""
    if parsed.message_id:
        seen = session.scalar(select(Activity.id).where(Activity.message_id == parsed.message_id))
        what = f"Message-ID {parsed.message_id}"
    elif parsed.message_key:
        seen = session.scalar(select(Activity.id).where(Activity.message_key == parsed.message_key))
        what = f"a message without Message-ID, key {parsed.message_key}"
    else:
        return None
    if seen is None:
        return None
    touched = Touched()
    touched.add(EntityType.ACTIVITY, seen)
    return MailOutcome(ThreadDecision.DUPLICATE, f"{what} seen before", touched)


def _thread(
    session: Session, parsed: ParsedEmail
) -> tuple[ThreadDecision, str, SupportCase | None, Activity | None] | None:
    """A reply to a stored message, or a message carrying a case token."""
    for key in thread_keys(parsed):
        parent = session.scalars(select(Activity).where(Activity.message_id == key)).first()
        if parent is not None:
            case = (
                session.get(SupportCase, parent.support_case_id) if parent.support_case_id else None
            )
            if case is not None:
                return (
                    ThreadDecision.REPLY_TO_CASE,
                    f"references <{key}> of case #{case.id}",
                    case,
                    parent,
                )
            return ThreadDecision.REPLY_TO_MESSAGE, f"references <{key}>", None, parent
        case = session.scalars(
            select(SupportCase).where(SupportCase.root_message_id == key)
        ).first()
        if case is not None:
            return (
                ThreadDecision.REPLY_TO_CASE,
                f"references <{key}> of case #{case.id}",
                case,
                None,
            )
    if parsed.message_id:
        child = session.scalars(
            select(Activity)
            .join(MessageReference, MessageReference.activity_id == Activity.id)
            .where(
                MessageReference.message_id == parsed.message_id,
                Activity.support_case_id.is_not(None),
            )
            .order_by(Activity.id)
        ).first()
        case = session.get(SupportCase, child.support_case_id) if child else None
        if child is not None and case is not None:
            reason = f"named by <{child.message_id}> of case #{case.id}, which was filed first"
            if case.root_message_id == child.message_id:
                _reroot(case, parsed)
            return ThreadDecision.PARENT_OF_REPLY, reason, case, None
    return None


def _by_case_token(
    session: Session, parsed: ParsedEmail, context: MailContext
) -> tuple[tuple[ThreadDecision, str, SupportCase, None] | None, str | None]:
    """The case a subject token names, when it may be filed there; else why not."""
    case_id = parsed.case_token
    case = session.get(SupportCase, case_id) if case_id is not None and case_id < 2**63 else None
    if case is None:
        return None, None
    if context.case_tokens.verifies(case.id, parsed.case_tag):
        reason = f"subject carries the signed token of case #{case.id}"
        return (ThreadDecision.CASE_TOKEN, reason, case, None), None
    if _sender_of_customer(session, parsed, context, case):
        reason = f"subject names case #{case.id}; the sender is a contact of its customer"
        return (ThreadDecision.CASE_TOKEN, reason, case, None), None
    refusal = (
        f"subject names case #{case.id} without its signed token, and the sender is not a"
        " contact of its customer"
    )
    return None, refusal


def _sender_of_customer(
    session: Session, parsed: ParsedEmail, context: MailContext, case: SupportCase
) -> bool:
    if not parsed.from_address:
        return False
    contact = context.find_contact(session, parsed.from_address)
    return contact is not None and contact.customer_id == case.customer_id


def _may_reopen(
    session: Session, parsed: ParsedEmail, context: MailContext, case: SupportCase
) -> bool:
    """An open case takes any threaded message; a resolved or closed one only its own people's."""
    if case.status not in (CaseStatus.RESOLVED, CaseStatus.CLOSED):
        return True
    signed = parsed.case_token == case.id and context.case_tokens.verifies(case.id, parsed.case_tag)
    return signed or _sender_of_customer(session, parsed, context, case)


def _reroot(case: SupportCase, parsed: ParsedEmail) -> None:
    """The case was opened by a reply filed before this, its parent: the parent opens it now."""
    case.root_message_id = parsed.message_id
    case.subject = parsed.subject or case.subject
    case.description = parsed.text[:10_000] or case.description


def _thread_identities(parsed: ParsedEmail) -> list[str]:
    """Every Message-ID that ties this message to a thread: its own and those it names."""
    own = [parsed.message_id or parsed.message_key or ""]
    return [*filter(None, own), *thread_keys(parsed)]


def _record_bounce(session: Session, parsed: ParsedEmail, context: MailContext) -> MailOutcome:
    """A verified report suppresses or counts; anything else is only recorded, with the reason."""
    bounce = parsed.bounce
    assert bounce is not None
    result = apply_bounce(
        session,
        bounce=bounce,
        report_key=parsed.message_id or parsed.message_key or "",
        policy=context.bounces,
    )
    notes = []
    if result.suppressed:
        notes.append(f"suppressed {', '.join(dict.fromkeys(result.suppressed))}")
    counted = [a for a in dict.fromkeys(result.counted) if a not in result.suppressed]
    if counted:
        notes.append(f"transient failure counted for {', '.join(counted)}")
    if not result.unverified:
        return MailOutcome(ThreadDecision.BOUNCE, "; ".join(notes), Touched())
    reason = "; ".join(result.unverified)
    activity = Activity(
        type=ActivityType.BOUNCE_UNVERIFIED,
        direction=Direction.INBOUND,
        occurred_at=parsed.date or utcnow(),
        summary=f"Unverified bounce from {parsed.from_address or 'no sender'}: {reason}"[:500],
        details={
            "reason": reason,
            "from": parsed.from_address,
            "subject": parsed.subject,
            "recipients": list(bounce.addresses),
            "original_message_id": bounce.original_message_id,
            "is_report": bounce.is_report,
        },
        message_id=parsed.message_id,
        message_key=None if parsed.message_id else parsed.message_key,
        event_id=context.event_id,
    )
    session.add(activity)
    session.flush()
    touched = Touched()
    touched.add(EntityType.ACTIVITY, activity.id)
    decision = (
        ThreadDecision.BOUNCE if result.suppressed or counted else ThreadDecision.BOUNCE_UNVERIFIED
    )
    return MailOutcome(decision, "; ".join([*notes, f"not believed: {reason}"]), touched)


def _auto_generated(session: Session, parsed: ParsedEmail, context: MailContext) -> MailOutcome:
    """Auto-generated mail opens no case and creates nobody; a known sender gets it on record."""
    reason = f"auto-generated ({parsed.auto_reason}): opens no case"
    assert parsed.from_address
    contact = context.find_contact(session, parsed.from_address)
    if contact is None:
        return MailOutcome(ThreadDecision.AUTO_GENERATED, reason + ", sender unknown", Touched())
    touched = Touched()
    decision = (ThreadDecision.AUTO_GENERATED, reason)
    activity = _email_activity(session, parsed, context, contact=contact, decision=decision)
    _touch(touched, activity)
    return MailOutcome(ThreadDecision.AUTO_GENERATED, reason, touched)


def _open_case(
    session: Session,
    parsed: ParsedEmail,
    context: MailContext,
    *,
    reason: str = "addressed to a support address; no thread matched",
) -> MailOutcome:
    assert parsed.from_address
    contact, touched = context.resolve_contact(session, parsed.from_address, parsed.from_name)
    now = utcnow()
    case = SupportCase(
        customer_id=contact.customer_id,
        contact_id=contact.id,
        source_id=context.source_id,
        subject=parsed.subject or "(no subject)",
        description=parsed.text[:10_000] or None,
        channel=CaseChannel.EMAIL,
        root_message_id=parsed.message_id,
        first_response_due_at=context.sla.first_response_due("normal", opened_at=now),
        resolution_due_at=context.sla.resolution_due("normal", opened_at=now),
    )
    session.add(case)
    session.flush()
    opened = case_opened(
        session,
        case,
        summary=f"Case #{case.id} opened by e-mail: {case.subject}",
        event_id=context.event_id,
    )
    _touch(touched, opened)
    touched.add(EntityType.SUPPORT_CASE, case.id)
    reason += _acknowledge(session, parsed, context, case=case, contact=contact, touched=touched)
    decision = (ThreadDecision.NEW_CASE, reason)
    activity = _email_activity(
        session, parsed, context, contact=contact, case=case, decision=decision
    )
    _touch(touched, activity)
    return MailOutcome(ThreadDecision.NEW_CASE, reason, touched)


def _acknowledge(
    session: Session,
    parsed: ParsedEmail,
    context: MailContext,
    *,
    case: SupportCase,
    contact: Contact,
    touched: Touched,
) -> str:
    """Record an acknowledgement when the rules allow one; the note for the reason."""
    if context.auto_ack is None:
        return ""
    refusal = ack_refusal(session, parsed=parsed, contact=contact, settings=context.auto_ack)
    if refusal is not None:
        return f"; not acknowledged: {refusal}" if context.auto_ack.enabled else ""
    ack = record_auto_ack(
        session,
        case=case,
        contact=contact,
        parsed=parsed,
        settings=context.auto_ack,
        event_id=context.event_id,
        token=context.case_tokens.token(case.id),
    )
    touched.add(EntityType.ACTIVITY, ack.id)
    return "; acknowledged"


def _append(
    session: Session,
    parsed: ParsedEmail,
    context: MailContext,
    decision: ThreadDecision,
    reason: str,
    *,
    case: SupportCase | None = None,
    parent: Activity | None = None,
) -> MailOutcome:
    """Record the message on its case, or on the sender's contact."""
    assert parsed.from_address
    contact, touched = context.resolve_contact(session, parsed.from_address, parsed.from_name)
    if case is not None:
        touched.add(EntityType.SUPPORT_CASE, case.id)
        _reopen(session, case, context)
    activity = _email_activity(
        session, parsed, context, contact=contact, case=case, decision=(decision, reason)
    )
    if parent is not None and case is None and parent.opportunity_id:
        activity.opportunity_id = parent.opportunity_id
    _touch(touched, activity)
    return MailOutcome(decision, reason, touched)


def _reopen(session: Session, case: SupportCase, context: MailContext) -> None:
    """A customer writing to a resolved or closed case opens it again."""
    if case.status not in (CaseStatus.RESOLVED, CaseStatus.CLOSED):
        return
    change_case_status(
        session, case, CaseStatus.OPEN, event_id=context.event_id, why="customer replied"
    )


def _email_activity(
    session: Session,
    parsed: ParsedEmail,
    context: MailContext,
    *,
    contact: Contact,
    decision: tuple[ThreadDecision, str],
    case: SupportCase | None = None,
) -> Activity:
    details = parsed.to_json_dict()
    details["threading"] = {"decision": decision[0], "reason": decision[1]}
    activity = Activity(
        type=ActivityType.EMAIL_RECEIVED,
        direction=Direction.INBOUND,
        occurred_at=parsed.date or utcnow(),
        summary=_summary(parsed),
        details=details,
        message_id=parsed.message_id,
        message_key=None if parsed.message_id else parsed.message_key,
        customer_id=contact.customer_id,
        contact_id=contact.id,
        support_case_id=case.id if case else None,
        event_id=context.event_id,
    )
    session.add(activity)
    contact.last_activity_at = utcnow()
    session.flush()
    named = thread_keys(parsed)
    if named:
        session.execute(
            insert(MessageReference),
            [{"activity_id": activity.id, "message_id": key} for key in named],
        )
    if context.blobs is not None:
        record_attachments(
            session, activity=activity, attachments=parsed.attachments, store=context.blobs
        )
    return activity


def _summary(parsed: ParsedEmail) -> str:
    """The subject, and the reply itself when the provider that received it stripped it."""
    subject = parsed.subject or "(no subject)"
    reply = " ".join(parsed.reply_text.split()) if parsed.reply_text else ""
    return (f"{subject}: {reply}" if reply else subject)[:500]


def _touch(touched: Touched, activity: Activity) -> None:
    touched.add(EntityType.ACTIVITY, activity.id)
    touched.add(EntityType.CUSTOMER, activity.customer_id)
    touched.add(EntityType.CONTACT, activity.contact_id)
