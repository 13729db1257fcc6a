"""Late deliveries: an update older than the stored state changes nothing, and says so.

Senders retry and reorder webhooks, and operators replay old events. Orders,
cases and deals keep the sender's own time of the state they hold
(``source_updated_at``); an update stating an earlier time is recorded as one
``stale_update`` Activity on the record's timeline and applied to nothing.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from crm_core.activities.models import Activity, ActivityType, Direction
from crm_core.db import utcnow

# The column of ``Activity`` that links each kind of record.
LINKS = {"order_id", "support_case_id", "opportunity_id"}


def _aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def is_stale(stored: dt.datetime | None, stated: dt.datetime | None) -> bool:
    """Whether a state stated at ``stated`` is older than the one stored at ``stored``.

    Without either time nothing can be told, and the update applies; the same time
    applies too (a redelivery, or a second change within the sender's clock tick).
    """
    if stored is None or stated is None:
        return False
    return _aware(stated) < _aware(stored)


def latest(stored: dt.datetime | None, stated: dt.datetime | None) -> dt.datetime | None:
    """The later of two sender times (either may be missing)."""
    if stored is None or stated is None:
        return stated or stored
    return max(_aware(stored), _aware(stated))


def record_stale_update(
    session: Session,
    *,
    event_id: int | None,
    summary: str,
    details: dict[str, Any],
    customer_id: int | None,
    contact_id: int | None,
    link: str,
    record_id: int,
) -> int:
    """The ``stale_update`` Activity of ``event_id`` on one record, written once (a replay of
    the same event adds nothing); its id. ``link`` names the record's column."""
    assert link in LINKS, link
    column = getattr(Activity, link)
    if event_id is not None:
        existing = session.scalar(
            select(Activity.id).where(
                Activity.event_id == event_id,
                column == record_id,
                Activity.type == ActivityType.STALE_UPDATE,
            )
        )
        if existing is not None:
            return existing
    activity = Activity(
        type=ActivityType.STALE_UPDATE,
        direction=Direction.INBOUND,
        occurred_at=utcnow(),
        summary=summary,
        details=details,
        customer_id=customer_id,
        contact_id=contact_id,
        event_id=event_id,
        **{link: record_id},
    )
    session.add(activity)
    session.flush()
    return activity.id


def iso(value: dt.datetime | None) -> str | None:
    """A time for an Activity's details."""
    return _aware(value).isoformat() if value is not None else None
