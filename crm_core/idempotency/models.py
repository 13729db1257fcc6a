"""One row per (actor, Idempotency-Key): the request it was first used with, and its answer."""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any

from sqlalchemy import JSON, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from crm_core.db import Base, check_one_of, intpk, str40, str255, utcnow


class KeyState(enum.StrEnum):
    IN_PROGRESS = "in_progress"
    DONE = "done"


class IdempotencyKey(Base):
    """A key a client sent with a write, the request's fingerprint and, once done, its answer.

    ``UNIQUE(actor, key)`` is what makes a concurrent duplicate safe: the second insert waits
    for the first and then finds its row.
    """

    __tablename__ = "idempotency_keys"
    __table_args__ = (
        check_one_of("state", KeyState),
        UniqueConstraint("actor", "key"),
        Index("ix_idempotency_keys_expires_at", "expires_at"),
    )

    id: Mapped[intpk]
    # Whose key: "api_key:<id>", "user:<id>"; two clients may use the same key.
    actor: Mapped[str255]
    key: Mapped[str255]
    # SHA-256 of the method, the path and the body: the same key with another request is refused.
    fingerprint: Mapped[str] = mapped_column(String(64))
    state: Mapped[str40] = mapped_column(default=KeyState.IN_PROGRESS)
    status: Mapped[int | None] = mapped_column(Integer)
    headers: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    body: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[dt.datetime]
