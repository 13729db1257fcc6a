"""The suppression list: addresses no campaign may mail (unsubscribed, bounced…).

Operators see and undo it (``GET /api/suppressions``, ``crm suppressions``); a
removal needs a reason, which is recorded as an Activity.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
from collections.abc import Iterable
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from crm_core.activities.models import Activity, ActivityType, Direction
from crm_core.base.pagination import Page, decode_cursor, encode_cursor
from crm_core.base.serialize import to_dict
from crm_core.bounces.models import MailBounce, Suppression, SuppressionReason
from crm_core.customers.models import Contact
from crm_core.customers.services import surviving
from crm_core.db import dialect_insert, utcnow
from crm_core.errors import FieldError, InvalidInput


def suppress(
    session: Session,
    *,
    email_normalized: str,
    reason: SuppressionReason,
    detail: str | None = None,
    campaign_id: int | None = None,
    provider: str | None = None,
) -> bool:
    """Put an address on the list; True when it was not there before (idempotent).

    ``provider`` names the e-mail provider whose delivery report said so, if one did.
    """
    now = utcnow()
    inserted = session.execute(
        dialect_insert(session, Suppression)
        .values(
            email_normalized=email_normalized,
            reason=reason,
            detail=detail,
            campaign_id=campaign_id,
            provider=provider,
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


ERASED_PREFIX = "erased:"


def erased_address_token(*, secret_key: str, email_normalized: str) -> str:
    """What stays on the list of an erased address: a keyed hash, never the address.

    HMAC-SHA-256 under a key derived from ``CRM_SECRET_KEY``: a copy of the database alone
    cannot confirm a guessed address, and the same address always gives the same token.
    """
    key = hashlib.sha256(b"crm.erased-address\0" + secret_key.encode()).digest()
    digest = hmac.new(key, email_normalized.strip().lower().encode(), hashlib.sha256)
    return ERASED_PREFIX + digest.hexdigest()


def erased_among(
    session: Session, *, secret_key: str, addresses: Iterable[str]
) -> dict[str, dt.datetime]:
    """Which of ``addresses`` belong to an erased person, with when each was erased."""
    tokens = {
        erased_address_token(secret_key=secret_key, email_normalized=a): a for a in addresses if a
    }
    if not tokens:
        return {}
    rows = session.execute(
        select(Suppression.email_normalized, Suppression.created_at).where(
            Suppression.email_normalized.in_(list(tokens))
        )
    )
    return {tokens[token]: created_at for token, created_at in rows}


MAX_BOUNCES_SHOWN = 20


def suppression_view(session: Session, row: Suppression) -> dict[str, Any]:
    """A suppression as operators see it, with the verified failures of its address."""
    query = (
        select(MailBounce)
        .where(MailBounce.email_normalized == row.email_normalized)
        .order_by(MailBounce.received_at.desc(), MailBounce.id.desc())
        .limit(MAX_BOUNCES_SHOWN)
    )
    bounces = [to_dict(bounce, hide={"id"}) for bounce in session.scalars(query)]
    return {**to_dict(row), "email": row.email_normalized, "bounces": bounces}


def list_suppressions(
    session: Session, *, email: str | None, cursor: str | None, limit: int
) -> Page:
    """Suppressed addresses in id order, or only ``email`` (matched case-insensitively)."""
    query = select(Suppression).order_by(Suppression.id).limit(limit + 1)
    if email is not None:
        query = query.where(Suppression.email_normalized == email.strip().lower())
    after = decode_cursor(cursor, length=1)
    if after is not None:
        query = query.where(Suppression.id > after[0])
    rows = list(session.scalars(query))
    more = len(rows) > limit
    rows = rows[:limit]
    return Page(
        items=[suppression_view(session, row) for row in rows],
        next=encode_cursor([rows[-1].id]) if more else None,
    )


def get_suppression(session: Session, *, email: str) -> dict[str, Any] | None:
    """The suppression of ``email``, with its failures; None when it is not suppressed."""
    row = session.scalars(
        select(Suppression).where(Suppression.email_normalized == email.strip().lower())
    ).first()
    return suppression_view(session, row) if row else None


def remove_suppression(session: Session, *, email: str, reason: str) -> dict[str, Any] | None:
    """Take ``email`` off the list; the reason and what was removed stay on record.

    Returns what was removed, or None when the address was not on the list.
    """
    if not reason.strip():
        raise InvalidInput([FieldError(("reason",), "removing a suppression needs a reason")])
    normalized = email.strip().lower()
    row = session.scalars(
        select(Suppression).where(Suppression.email_normalized == normalized).with_for_update()
    ).first()
    if row is None:
        return None
    removed = suppression_view(session, row)
    contact = session.scalars(select(Contact).where(Contact.email_normalized == normalized)).first()
    if contact is not None:  # a merged contact's address: the note goes on its survivor
        contact = surviving(session, contact)
    session.add(
        Activity(
            type=ActivityType.SUPPRESSION_REMOVED,
            direction=Direction.INTERNAL,
            summary=f"{normalized} taken off the suppression list: {reason.strip()}"[:500],
            details={"reason": reason.strip()[:1000], "removed": removed},
            customer_id=contact.customer_id if contact else None,
            contact_id=contact.id if contact else None,
        )
    )
    session.delete(row)
    session.flush()
    return removed
