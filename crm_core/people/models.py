"""Users, API keys and the audit log."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Text
from sqlalchemy.orm import Mapped, mapped_column

from crm_core.db import Base, BigId, Timestamped, check_one_of, intpk, str40, str80, str255, utcnow
from crm_core.people.permissions import Role


class User(Timestamped, Base):
    """A person who signs in, with a role; disabled users are kept for the audit log."""

    __tablename__ = "users"
    __table_args__ = (check_one_of("role", Role),)

    id: Mapped[intpk]
    # Lower-cased: one account per address whatever its case.
    email: Mapped[str255] = mapped_column(unique=True)
    role: Mapped[str40]
    # argon2id, in the library's encoded form (parameters and salt included).
    password_hash: Mapped[str] = mapped_column(Text)
    disabled_at: Mapped[dt.datetime | None]
    last_login_at: Mapped[dt.datetime | None]


class ApiKey(Base):
    """A bearer key for the API, stored as a SHA-256 digest, with its scopes.

    A key that belongs to a user never does more than the user's role allows, and
    stops working when the user is disabled.
    """

    __tablename__ = "api_keys"

    id: Mapped[intpk]
    name: Mapped[str80] = mapped_column(unique=True)
    # The first characters of the key, shown in listings to tell keys apart.
    prefix: Mapped[str40]
    key_hash: Mapped[str] = mapped_column(Text, unique=True)
    scopes: Mapped[list[str]] = mapped_column(JSON)
    user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="RESTRICT"), index=True, info={"erd_label": "owns"}
    )
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[dt.datetime | None]
    revoked_at: Mapped[dt.datetime | None]


class AuditEntry(Base):
    """One write: who did it, when, to which entity, and each changed field before and after.

    Written in the transaction of the write itself, so a write that rolls back leaves
    no entry and no write goes unrecorded. ``actor`` is the actor's label
    (``user:EMAIL``, ``api_key:NAME``, ``operator:NAME``), kept as text so the entry
    outlives the user or key.
    """

    __tablename__ = "audit_entries"
    __table_args__ = (
        Index("ix_audit_entries_entity_entity_id", "entity", "entity_id"),
        Index("ix_audit_entries_actor_occurred_at", "actor", "occurred_at"),
        Index("ix_audit_entries_occurred_at", "occurred_at"),
    )

    id: Mapped[intpk]
    occurred_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    actor: Mapped[str255]
    actor_kind: Mapped[str40]
    entity: Mapped[str40]
    entity_id: Mapped[int] = mapped_column(BigId)
    action: Mapped[str40]  # create, update, delete
    changes: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
