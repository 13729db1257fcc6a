"""Subscribing URLs to events, and recording what each subscription is owed.

``notify`` writes one delivery row per matching subscription in the caller's
transaction, so a notification exists exactly when the change that caused it
was committed; ``crm_core.notifications.posting`` posts them afterwards.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from sqlalchemy import delete, insert, select
from sqlalchemy.orm import Session

from crm_core.base.signing import generate_secret
from crm_core.db import utcnow
from crm_core.errors import FieldError, InvalidInput
from crm_core.notifications.events import EVENT_DATA, EventData
from crm_core.notifications.models import NotificationDelivery, Subscription

# What the platform notifies about; a subscription names some of these, or "*".
EVENT_TYPES = tuple(EVENT_DATA)
ALL_EVENTS = "*"


@dataclass(frozen=True)
class NewSubscription:
    id: int
    url: str
    events: list[str]
    secret: str


def check_url(url: str) -> str:
    """``url`` if it is an absolute http(s) URL with a host; InvalidInput otherwise.

    Where it points (a private address?) is checked when it is sent to, since
    what a name resolves to can change.
    """
    try:
        parts = urlsplit(url.strip())
        _ = parts.port  # a malformed port raises here
    except ValueError:
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidInput([FieldError(("url",), "must be an http:// or https:// URL with a host")])
    if parts.username or parts.password:
        raise InvalidInput([FieldError(("url",), "must not carry a user name or password")])
    return url.strip()


def check_events(events: list[str]) -> list[str]:
    """The event types, each known (or ``*``), without repeats; InvalidInput otherwise."""
    cleaned = list(dict.fromkeys(e.strip() for e in events if e.strip()))
    unknown = [e for e in cleaned if e != ALL_EVENTS and e not in EVENT_TYPES]
    if not cleaned or unknown:
        known = ", ".join((*EVENT_TYPES, ALL_EVENTS))
        what = f"unknown: {', '.join(unknown)}" if unknown else "none given"
        raise InvalidInput([FieldError(("events",), f"{what}; choose from {known}")])
    return cleaned


def add_subscription(session: Session, *, url: str, events: list[str]) -> NewSubscription:
    """Subscribe ``url`` to ``events``; the signing secret is returned only here."""
    subscription = Subscription(
        url=check_url(url), events=check_events(events), secret=generate_secret()
    )
    session.add(subscription)
    session.flush()
    return NewSubscription(
        subscription.id, subscription.url, list(subscription.events), subscription.secret
    )


def list_subscriptions(session: Session) -> list[Subscription]:
    return list(session.scalars(select(Subscription).order_by(Subscription.id)))


def remove_subscription(session: Session, *, subscription_id: int) -> bool:
    """Delete a subscription and what it is still owed; False if there is none."""
    result = session.execute(delete(Subscription).where(Subscription.id == subscription_id))
    return bool(result.rowcount)  # type: ignore[attr-defined]


def notify(session: Session, event: EventData, *, now: dt.datetime | None = None) -> list[int]:
    """Owe ``event`` to every enabled subscription that wants its type; the delivery ids.

    Called once per change, by the service that makes it, in the change's transaction.
    """
    return notify_all(session, [event], now=now)


def notify_all(
    session: Session, events: Sequence[EventData], *, now: dt.datetime | None = None
) -> list[int]:
    """``notify`` for several changes at once (a batch of leads): one read, one INSERT."""
    for event in events:
        if EVENT_DATA.get(event.event_type) is not type(event):
            raise ValueError(f"unknown event type {event.event_type!r}")
    if not events:
        return []
    subscriptions = [
        (s.id, set(s.events))
        for s in session.scalars(
            select(Subscription).where(Subscription.enabled.is_(True)).order_by(Subscription.id)
        )
    ]
    if not subscriptions:
        return []
    moment = now or utcnow()
    rows = []
    for event in events:
        payload = {
            "type": event.event_type,
            "timestamp": moment.isoformat(),
            "data": event.model_dump(mode="json"),
        }
        rows += [
            {
                "subscription_id": subscription_id,
                "event_type": event.event_type,
                "payload": payload,
                "next_attempt_at": moment,
            }
            for subscription_id, wanted in subscriptions
            if event.event_type in wanted or ALL_EVENTS in wanted
        ]
    if not rows:
        return []
    return list(
        session.scalars(insert(NotificationDelivery).returning(NotificationDelivery.id), rows)
    )
