"""What an e-mail provider reports about mail we sent through it, in our own terms.

Mailgun, SendGrid and Postmark each post their own event documents (a failed
delivery, a spam complaint, an unsubscribe). Each provider's mapping restates one
of them as a ``DeliveryReport``; ``apply_delivery_reports`` then treats every
provider alike, by the rules of a verified DSN: a report counts only for a message
this platform sent (found by the provider's id recorded at send time, or by its
Message-ID) to the very address it names. A permanent bounce, a complaint or an
unsubscribe suppresses the address at once; a transient bounce is counted and
suppresses after the ``BouncePolicy``'s repeats. Each report is applied once
(``delivery_reports``, unique per provider and report id), marks the message it
refers to, and is written on the contact's timeline.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import ColumnElement, or_, select
from sqlalchemy.orm import Session

from crm_core.activities.models import Activity, ActivityType, Direction
from crm_core.base.entities import EntityType
from crm_core.base.touched import Touched
from crm_core.bounces.models import AppliedDeliveryReport, SentMessage, SuppressionReason
from crm_core.bounces.services import (
    BouncePolicy,
    Failure,
    mark_reported,
    normalize_provider_id,
    record_failure,
)
from crm_core.bounces.suppression import suppress
from crm_core.customers.models import Contact
from crm_core.customers.services import surviving
from crm_core.db import dialect_insert, utcnow
from crm_core.mail import normalize_address, normalize_message_id


class ReportOutcome(enum.StrEnum):
    """What happened to a message, as far as the provider could tell."""

    # The receiving side refused it: permanent (hard) or transient (soft).
    BOUNCED = "bounced"
    # The recipient marked it as spam.
    COMPLAINED = "complained"
    # The recipient used the provider's unsubscribe link or list-unsubscribe.
    UNSUBSCRIBED = "unsubscribed"


@dataclass(frozen=True)
class DeliveryReport:
    """One provider event about one recipient of one message we sent."""

    # ``mailgun``, ``sendgrid`` or ``postmark``.
    provider: str
    # The provider's id of this event (Mailgun ``event-data.id``, SendGrid ``sg_event_id``,
    # Postmark ``ID``): a report seen twice is applied once.
    report_id: str
    # The address the event is about, as the provider gives it.
    recipient: str
    outcome: ReportOutcome
    # For ``BOUNCED``: whether the failure is permanent. Complaints and unsubscribes are.
    permanent: bool
    # The provider's id of the message the event refers to, as its send API returned it.
    provider_message_id: str | None = None
    # The RFC 5322 Message-ID of that message, when the provider passes it on.
    message_id: str | None = None
    # The provider's own words (status code, description), bounded by the mapping.
    reason: str | None = None
    occurred_at: dt.datetime | None = None


_REASONS = {
    ReportOutcome.COMPLAINED: SuppressionReason.COMPLAINED,
    ReportOutcome.UNSUBSCRIBED: SuppressionReason.UNSUBSCRIBED,
}


def apply_delivery_reports(
    session: Session,
    reports: Iterable[DeliveryReport],
    *,
    policy: BouncePolicy,
    event_id: int | None = None,
) -> list[tuple[str, int]]:
    """Apply each report once; what it touched as ``(entity_type, id)``, as the handlers return.

    ``event_id`` is the stored event the reports came in, recorded on their Activities.
    A report seen before, or about a message this platform did not send to that
    address, changes nothing but its own ``delivery_reports`` row.
    """
    touched = Touched()
    for report in reports:
        touched.extend(_apply(session, report, policy, event_id))
    return touched.items()


def _apply(
    session: Session, report: DeliveryReport, policy: BouncePolicy, event_id: int | None
) -> Touched:
    recipient = normalize_address(report.recipient) or report.recipient.strip().lower()[:255]
    row = _claim(session, report, recipient)
    if row is None:  # applied before
        return Touched()
    sent, refusal = _sent_message(session, report, recipient)
    row.sent_message_id = sent.id if sent is not None else None
    if sent is None:
        row.result = refusal
        return Touched()
    sent_activity = _sent_activity(session, sent)
    row.result = _act(session, report, sent, sent_activity, policy)
    mark_reported(sent, outcome=report.outcome)
    touched = Touched()
    if sent_activity is not None:
        sent_activity.details = {**sent_activity.details, "delivery_report": report.outcome.value}
        touched.add(EntityType.ACTIVITY, sent_activity.id)
    activity = _report_activity(session, report, sent, sent_activity, row.result, event_id)
    touched.add(EntityType.ACTIVITY, activity.id)
    touched.add(EntityType.CONTACT, activity.contact_id)
    return touched


def _claim(
    session: Session, report: DeliveryReport, recipient: str
) -> AppliedDeliveryReport | None:
    """The report's row, new; None when this provider's report id was applied before."""
    inserted = session.execute(
        dialect_insert(session, AppliedDeliveryReport)
        .values(
            provider=report.provider[:40],
            report_id=report.report_id[:255],
            recipient=recipient,
            outcome=report.outcome.value,
            permanent=report.permanent,
            result="",
            received_at=utcnow(),
        )
        .on_conflict_do_nothing(index_elements=["provider", "report_id"])
        .returning(AppliedDeliveryReport.id)
    ).scalar()
    return session.get(AppliedDeliveryReport, inserted) if inserted is not None else None


def _sent_message(
    session: Session, report: DeliveryReport, recipient: str
) -> tuple[SentMessage | None, str]:
    """The message the report is about, by the provider's id or the Message-ID; or why not."""
    provider_ids = _provider_ids(report)
    message_id = normalize_message_id(report.message_id)
    conditions: list[ColumnElement[bool]] = []
    if provider_ids:
        conditions.append(SentMessage.provider_message_id.in_(provider_ids))
    if message_id:
        conditions.append(SentMessage.message_id == message_id)
    if not conditions:
        return None, "names no message: neither the provider's message id nor a Message-ID"
    candidates = list(session.scalars(select(SentMessage).where(or_(*conditions)).limit(20)))
    for sent in candidates:
        if sent.recipient == recipient:
            return sent, ""
    named = ", ".join(filter(None, [*provider_ids, message_id and f"<{message_id}>"]))
    if candidates:
        return None, f"names {recipient}, but {named} was sent to {candidates[0].recipient}"
    return None, f"{named} is not a message this platform sent"


def _provider_ids(report: DeliveryReport) -> list[str]:
    """The send API's id the report names; SendGrid's events add ``.filter…`` to it."""
    provider_id = normalize_provider_id(report.provider_message_id)
    if provider_id is None:
        return []
    head = provider_id.split(".filter", 1)[0]
    return list(dict.fromkeys([provider_id, head]))


def _sent_activity(session: Session, sent: SentMessage) -> Activity | None:
    """The Activity that recorded the message going out: a campaign's, a reply's, an ack's."""
    # Campaign activities keep the Message-ID with its angle brackets.
    ids = [sent.message_id, f"<{sent.message_id}>"]
    query = select(Activity).where(
        Activity.message_id.in_(ids),
        Activity.type.in_([ActivityType.CAMPAIGN_SENT, ActivityType.EMAIL_SENT]),
    )
    return session.scalars(query).first()


def _act(
    session: Session,
    report: DeliveryReport,
    sent: SentMessage,
    sent_activity: Activity | None,
    policy: BouncePolicy,
) -> str:
    """Suppress or count as the report says; what was done, in a few words."""
    if report.outcome == ReportOutcome.BOUNCED:
        failure = Failure(
            report_key=f"{report.provider}:{report.report_id}",
            status=None,
            permanent=report.permanent,
            diagnostic=report.reason,
            provider=report.provider,
        )
        if record_failure(session, sent=sent, failure=failure, policy=policy):
            return f"suppressed {sent.recipient} (bounced)"
        return f"transient failure counted for {sent.recipient}"
    reason = _REASONS[report.outcome]
    suppress(
        session,
        email_normalized=sent.recipient,
        reason=reason,
        detail=report.reason[:1000] if report.reason else None,
        campaign_id=sent_activity.campaign_id if sent_activity is not None else None,
        provider=report.provider,
    )
    return f"suppressed {sent.recipient} ({reason.value})"


def _report_activity(
    session: Session,
    report: DeliveryReport,
    sent: SentMessage,
    sent_activity: Activity | None,
    result: str,
    event_id: int | None,
) -> Activity:
    contact = _contact(session, sent, sent_activity)
    what = _WORDS[report.outcome]
    if report.outcome == ReportOutcome.BOUNCED:
        what = f"bounced ({'permanent' if report.permanent else 'transient'})"
    activity = Activity(
        type=ActivityType.DELIVERY_REPORTED,
        direction=Direction.INBOUND,
        occurred_at=report.occurred_at or utcnow(),
        summary=f"{report.provider}: message to {sent.recipient} {what}"[:500],
        details={
            "provider": report.provider,
            "report_id": report.report_id,
            "outcome": report.outcome.value,
            "permanent": report.permanent,
            "reason": report.reason,
            "result": result,
            "kind": sent.kind,
            "message_id": sent.message_id,
            "provider_message_id": sent.provider_message_id,
            "sent_activity_id": sent_activity.id if sent_activity is not None else None,
        },
        customer_id=contact.customer_id if contact is not None else None,
        contact_id=contact.id if contact is not None else None,
        campaign_id=sent_activity.campaign_id if sent_activity is not None else None,
        support_case_id=sent_activity.support_case_id if sent_activity is not None else None,
        event_id=event_id,
    )
    session.add(activity)
    session.flush()
    return activity


_WORDS = {
    ReportOutcome.BOUNCED: "bounced",
    ReportOutcome.COMPLAINED: "drew a spam complaint",
    ReportOutcome.UNSUBSCRIBED: "led to an unsubscribe",
}


def _contact(session: Session, sent: SentMessage, sent_activity: Activity | None) -> Contact | None:
    """The contact the message went to (a merged one's survivor), or None."""
    contact = None
    if sent_activity is not None and sent_activity.contact_id is not None:
        contact = session.get(Contact, sent_activity.contact_id)
    if contact is None:
        query = select(Contact).where(Contact.email_normalized == sent.recipient)
        contact = session.scalars(query).first()
    return surviving(session, contact) if contact is not None else None
