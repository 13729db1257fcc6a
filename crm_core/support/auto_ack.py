"""Auto-acknowledgement of new cases, which must never feed a mail loop.

An acknowledgement is never sent to auto-generated, bulk or list mail (RFC 3834
and friends, as the parser judges it), nor to our own addresses; at most
``per_sender_per_day`` go to one address; each carries ``Auto-Submitted:
auto-replied``, ``In-Reply-To`` and the case token, so a robot's answer to it
threads onto the case instead of opening a new one. Two auto-responders
therefore exchange at most one message each, and a robot that strips every
header is cut off by the per-sender limit.

It is recorded as an outbound Activity whose delivery is ``pending``; the
worker sends it after the commit (``crm_core.support.pending_mail``).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING

from jinja2.sandbox import ImmutableSandboxedEnvironment
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from crm_core.activities.models import Activity, ActivityType, Direction
from crm_core.bounces.models import SentKind
from crm_core.bounces.services import SentRecord, record_sent
from crm_core.customers.models import Contact
from crm_core.db import utcnow
from crm_core.mail import ParsedEmail, normalize_address
from crm_core.mail_transport.messages import AutoSubmitted, new_message_id, sender_domain
from crm_core.support.models import SupportCase

if TYPE_CHECKING:
    from crm_core.config import Settings

_TEMPLATES = ImmutableSandboxedEnvironment(autoescape=False)


@dataclass(frozen=True)
class AutoAckSettings:
    enabled: bool
    subject: str
    text: str
    sender: str
    own_addresses: frozenset[str]
    per_sender_per_day: int

    @classmethod
    def from_settings(cls, settings: Settings) -> AutoAckSettings:
        """The acknowledgement rules as configured (``CRM_AUTO_ACK_*``)."""
        return cls(
            enabled=settings.auto_ack_enabled,
            subject=settings.auto_ack_subject,
            text=settings.auto_ack_text,
            sender=settings.mail_from,
            own_addresses=frozenset(settings.support_addresses),
            per_sender_per_day=settings.auto_ack_per_sender_per_day,
        )


def ack_refusal(
    session: Session, *, parsed: ParsedEmail, contact: Contact, settings: AutoAckSettings
) -> str | None:
    """Why this new case gets no acknowledgement, or None when it gets one."""
    if not settings.enabled:
        return "auto-acknowledgement is off"
    if parsed.auto_generated:
        return f"the request is auto-generated ({parsed.auto_reason})"
    address = parsed.from_address or ""
    if address in settings.own_addresses or address == normalize_address(settings.sender):
        return "the request comes from one of our own addresses"
    if sender_domain(settings.sender) != "localhost" and address.endswith(
        "@" + sender_domain(settings.sender)
    ):
        return "the request comes from our own domain"
    since = utcnow() - dt.timedelta(days=1)
    sent = session.scalar(
        select(func.count()).where(
            Activity.contact_id == contact.id,
            Activity.type == ActivityType.EMAIL_SENT,
            Activity.details["auto_ack"].as_boolean(),
            Activity.occurred_at >= since,
        )
    )
    if (sent or 0) >= settings.per_sender_per_day:
        return f"{sent} acknowledgements sent to this address in the last 24 hours"
    return None


def record_auto_ack(
    session: Session,
    *,
    case: SupportCase,
    contact: Contact,
    parsed: ParsedEmail,
    settings: AutoAckSettings,
    event_id: int | None,
    token: str,
) -> Activity:
    """Record the acknowledgement of ``case`` as a pending outbound e-mail.

    ``token`` is the case's signed subject token; the Message-ID is recorded as
    sent, so a report of its failure can be verified.
    """
    context = {
        "case": {"id": case.id, "subject": case.subject},
        "contact": {"first_name": contact.first_name, "full_name": contact.full_name},
    }
    subject = " ".join(_TEMPLATES.from_string(settings.subject).render(context).split())
    if token not in subject:
        subject = f"{subject} {token}"
    references = [f"<{ref}>" for ref in (*parsed.references, parsed.message_id) if ref][-20:]
    message_id = new_message_id(settings.sender)
    activity = Activity(
        type=ActivityType.EMAIL_SENT,
        direction=Direction.OUTBOUND,
        summary=subject[:500],
        message_id=message_id.strip("<>"),
        details={
            "auto_ack": True,
            "delivery": "pending",
            "to": parsed.from_address,
            "subject": subject,
            "text": _TEMPLATES.from_string(settings.text).render(context),
            "in_reply_to": f"<{parsed.message_id}>" if parsed.message_id else None,
            "references": references,
            "message_id": message_id,
            "auto_submitted": AutoSubmitted.REPLIED.value,
        },
        customer_id=case.customer_id,
        contact_id=contact.id,
        support_case_id=case.id,
        event_id=event_id,
    )
    session.add(activity)
    session.flush()
    if parsed.from_address:
        record_sent(session, [SentRecord(message_id, parsed.from_address, SentKind.AUTO_ACK)])
    return activity
