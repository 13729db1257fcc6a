"""Outbound e-mails recorded as pending Activities, sent at most once after the commit.

A row is claimed ``pending → sending`` and that is committed before the mail
system is called; a row found ``sending`` later (a crash) is never sent again.
"""

from __future__ import annotations

import datetime as dt
from email.message import EmailMessage
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from crm_core.activities.models import Activity, ActivityType
from crm_core.bounces.services import record_provider_id
from crm_core.db import utcnow
from crm_core.mail_transport.base import DeliveryError, MailBackend
from crm_core.mail_transport.messages import AutoSubmitted, OutboundMail, build_message


def send_one(
    backend: MailBackend, message: EmailMessage, *, idempotency_key: str
) -> tuple[str, str | None, str | None]:
    """Hand one message over: ``(delivery, provider id, error)``.

    Once it may have left, it is never sent again blindly: ``unknown``, not ``failed``.
    """
    try:
        with backend:
            return "sent", backend.send(message, idempotency_key=idempotency_key), None
    except DeliveryError as exc:
        return ("unknown" if exc.maybe_sent else "failed"), None, str(exc)[:1000]


def pending_deliveries(
    session: Session, *, event_id: int | None = None, older_than: dt.timedelta | None = None
) -> list[int]:
    """Ids of outbound e-mails waiting to be sent (of one event, or left behind a while)."""
    query = select(Activity.id).where(
        Activity.type == ActivityType.EMAIL_SENT,
        Activity.details["delivery"].as_string() == "pending",
    )
    if event_id is not None:
        query = query.where(Activity.event_id == event_id)
    if older_than is not None:
        query = query.where(Activity.occurred_at <= utcnow() - older_than)
    return list(session.scalars(query.order_by(Activity.id).limit(1000)))


def _claim(session: Session, activity_id: int) -> dict[str, Any] | None:
    activity = session.get(Activity, activity_id, with_for_update=True)
    if activity is None or activity.details.get("delivery") != "pending":
        return None
    activity.details = {**activity.details, "delivery": "sending"}
    return dict(activity.details)


def _record(session: Session, activity_id: int, **changes: Any) -> None:
    activity = session.get(Activity, activity_id)
    if activity is not None:
        activity.details = {**activity.details, **{k: v for k, v in changes.items() if v}}
        if changes.get("provider_id") and activity.message_id:
            # A provider's delivery report finds the message by the id its API gave it.
            record_provider_id(
                session, message_id=activity.message_id, provider_message_id=changes["provider_id"]
            )


def deliver_pending(
    sessions: sessionmaker[Session], backend: MailBackend, *, activity_id: int, sender: str
) -> str:
    """Send one pending outbound e-mail; its delivery: sent, failed, unknown or skipped."""
    with sessions.begin() as session:
        details = _claim(session, activity_id)
    if details is None:
        return "skipped"
    mail = OutboundMail(
        sender=sender,
        to=details["to"],
        subject=details["subject"],
        text=details["text"],
        in_reply_to=details.get("in_reply_to"),
        references=tuple(details.get("references") or ()),
        message_id=details.get("message_id"),
        auto_submitted=AutoSubmitted(details["auto_submitted"])
        if details.get("auto_submitted")
        else None,
    )
    delivery, provider_id, error = send_one(
        backend, build_message(mail), idempotency_key=f"mail-{activity_id}"
    )
    with sessions.begin() as session:
        _record(session, activity_id, delivery=delivery, provider_id=provider_id, error=error)
    return delivery
