"""Claiming an Idempotency-Key, storing the answer it got, replaying it.

The web layer claims a key in its own short transaction before the request's work, and
records the answer in another after it: the claim (``UNIQUE(actor, key)``) is what a
concurrent duplicate meets, and it must be visible to that duplicate while the first one
still works.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from crm_core.db import dialect_insert, utcnow
from crm_core.idempotency.models import IdempotencyKey, KeyState

# A claim still in progress after this long was left by a process that died: a retry may
# take it over. Far longer than any request may run.
ABANDONED_AFTER = dt.timedelta(minutes=5)
# How many expired keys one claim sweeps away.
SWEEP_BATCH = 100


@dataclass(frozen=True)
class StoredAnswer:
    """The first answer to a key: replayed as it was."""

    status: int
    headers: dict[str, str]
    body: str


class KeyReused(Exception):
    """The key was first used with another request (method, path or body)."""


class KeyInProgress(Exception):
    """The first request with this key has not finished yet."""


def sweep_expired(session: Session, *, now: dt.datetime | None = None) -> int:
    """Delete up to ``SWEEP_BATCH`` expired keys; how many went."""
    now = now or utcnow()
    expired = list(
        session.scalars(
            select(IdempotencyKey.id).where(IdempotencyKey.expires_at < now).limit(SWEEP_BATCH)
        )
    )
    if expired:
        session.execute(delete(IdempotencyKey).where(IdempotencyKey.id.in_(expired)))
    return len(expired)


def claim(
    session: Session,
    *,
    actor: str,
    key: str,
    fingerprint: str,
    ttl: dt.timedelta,
    now: dt.datetime | None = None,
) -> StoredAnswer | None:
    """Take ``key`` for this request (None: go ahead), or the answer its first use got.

    Raises ``KeyReused`` when the key came with another request, ``KeyInProgress`` when its
    first request is still running.
    """
    now = now or utcnow()
    sweep_expired(session, now=now)
    session.execute(
        delete(IdempotencyKey).where(
            IdempotencyKey.actor == actor,
            IdempotencyKey.key == key,
            (IdempotencyKey.expires_at < now)
            | (
                (IdempotencyKey.state == KeyState.IN_PROGRESS)
                & (IdempotencyKey.created_at < now - ABANDONED_AFTER)
            ),
        )
    )
    inserted = session.execute(
        dialect_insert(session, IdempotencyKey)
        .values(
            actor=actor,
            key=key,
            fingerprint=fingerprint,
            state=KeyState.IN_PROGRESS,
            created_at=now,
            expires_at=now + ttl,
        )
        .on_conflict_do_nothing(index_elements=["actor", "key"])
        .returning(IdempotencyKey.id)
    ).scalar()
    if inserted is not None:
        return None
    row = session.scalars(
        select(IdempotencyKey).where(IdempotencyKey.actor == actor, IdempotencyKey.key == key)
    ).one()
    if row.fingerprint != fingerprint:
        raise KeyReused(key)
    if row.state == KeyState.IN_PROGRESS or row.status is None:
        raise KeyInProgress(key)
    return StoredAnswer(status=row.status, headers=dict(row.headers or {}), body=row.body or "")


def complete(session: Session, *, actor: str, key: str, answer: StoredAnswer) -> None:
    """Record the answer the key's request got, to replay it."""
    row = session.scalars(
        select(IdempotencyKey).where(IdempotencyKey.actor == actor, IdempotencyKey.key == key)
    ).one_or_none()
    if row is None:  # swept meanwhile: nothing to replay
        return
    row.state = KeyState.DONE
    row.status = answer.status
    row.headers = answer.headers
    row.body = answer.body


def release(session: Session, *, actor: str, key: str) -> None:
    """Forget a claim whose request failed, so a retry runs it again."""
    session.execute(
        delete(IdempotencyKey).where(
            IdempotencyKey.actor == actor,
            IdempotencyKey.key == key,
            IdempotencyKey.state == KeyState.IN_PROGRESS,
        )
    )
