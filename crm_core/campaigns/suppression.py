"""The suppression list: addresses no campaign may mail (unsubscribed, bounced…)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from crm_core.campaigns.models import Suppression, SuppressionReason
from crm_core.db import dialect_insert, utcnow


def suppress(
    session: Session,
    *,
    email_normalized: str,
    reason: SuppressionReason,
    detail: str | None = None,
    campaign_id: int | None = None,
) -> bool:
    """Put an address on the list; True when it was not there before (idempotent)."""
    now = utcnow()
    inserted = session.execute(
        dialect_insert(session, Suppression)
        .values(
            email_normalized=email_normalized,
            reason=reason,
            detail=detail,
            campaign_id=campaign_id,
            created_at=now,
            updated_at=now,
        )
        .on_conflict_do_nothing()
        .returning(Suppression.id)
    ).scalar()
    return inserted is not None


def is_suppressed(session: Session, *, email_normalized: str) -> bool:
    """Whether the address is on the list, for any reason."""
    query = select(Suppression.id).where(Suppression.email_normalized == email_normalized)
    return session.scalar(query) is not None
