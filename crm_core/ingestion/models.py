"""The inbox: every accepted request is stored verbatim before it is acknowledged."""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    Text,
    UniqueConstraint,
    text,
    true,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from crm_core.base.entities import EntityType
from crm_core.db import Base, BigId, Timestamped, check_one_of, intpk, str40, str80, str255, utcnow
from crm_core.encryption.types import EncryptedString
from crm_core.payloads.kinds import EventKind, ProviderName


class EventStatus(enum.StrEnum):
    RECEIVED = "received"
    PROCESSING = "processing"
    PROCESSED = "processed"
    INVALID = "invalid"
    FAILED = "failed"
    DEAD = "dead"
    # A provider's topic the platform does not handle: kept, acknowledged, never processed.
    IGNORED = "ignored"


class BodyRemoval(enum.StrEnum):
    """Why an inbox event's raw body was dropped."""

    RETENTION = "retention"
    ERASURE = "erasure"


def _partial(name: str, column: str, where: str) -> Index:
    return Index(name, column, postgresql_where=text(where), sqlite_where=text(where))


class Source(Timestamped, Base):
    """A sending system (a web form, a shop, a help desk, a mailbox)."""

    __tablename__ = "sources"
    __table_args__ = (check_one_of("provider", ProviderName),)

    id: Mapped[intpk]
    name: Mapped[str80] = mapped_column(unique=True)
    # Decides at intake how a request is verified, its delivery id and its kind.
    provider: Mapped[str40] = mapped_column(
        default=ProviderName.STANDARD, server_default=ProviderName.STANDARD.value
    )
    description: Mapped[str | None] = mapped_column(Text)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    # Requests per minute this source may make; NULL uses the configured default.
    rate_limit_per_minute: Mapped[int | None] = mapped_column(Integer)
    # A web form's source: the origins (``https://example.com``) whose pages may post to it
    # (empty: any), and where a browser goes after posting (NULL: a thank-you page of ours).
    allowed_origins: Mapped[list[str] | None] = mapped_column(JSON)
    redirect_url: Mapped[str | None] = mapped_column(Text)
    # How the provider reads this source's requests beyond its defaults, validated when it
    # was set: the ``custom`` provider's mapping file, Typeform's answer refs. NULL: none.
    mapping: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # The public key that verifies the provider's signatures (SendGrid's event batches, base64
    # DER), validated when it was set; a public key is no secret. NULL: none given.
    public_key: Mapped[str | None] = mapped_column(Text)

    secrets: Mapped[list[SourceSecret]] = relationship(
        back_populates="source",
        cascade="all, delete-orphan",
        passive_deletes=True,
        order_by="SourceSecret.id.desc()",
    )


class SourceSecret(Base):
    """A signing secret of a source; after rotation the old one verifies until it expires."""

    __tablename__ = "source_secrets"

    id: Mapped[intpk]
    source_id: Mapped[int] = mapped_column(
        ForeignKey("sources.id", ondelete="CASCADE"), index=True, info={"erd_label": "signs_with"}
    )
    # ``whsec_`` + base64; HMAC needs the secret itself, so it cannot be hashed:
    # it is encrypted at rest instead (crm_core.encryption).
    secret: Mapped[str] = mapped_column(EncryptedString(255))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[dt.datetime | None]

    source: Mapped[Source] = relationship(back_populates="secrets")


class InboxEvent(Base):
    """One accepted request, stored verbatim, and how far its processing got."""

    __tablename__ = "inbox_events"
    __table_args__ = (
        check_one_of("kind", EventKind),
        check_one_of("status", EventStatus),
        # A redelivery of the same webhook is the same event.
        UniqueConstraint("source_id", "webhook_id"),
        # The sweeper's and the operator's queries: events by status and age.
        Index("ix_inbox_events_status_received_at", "status", "received_at"),
        Index("ix_inbox_events_status_next_attempt_at", "status", "next_attempt_at"),
        # The retention task's: only finished events whose body is still kept, so a batch
        # costs the same however large the inbox grows (docs/operations/scale.md).
        _partial(
            "ix_inbox_events_body_kept_received_at",
            "received_at",
            "status IN ('processed', 'ignored') AND body_removed_at IS NULL",
        ),
    )

    id: Mapped[intpk]
    # An event is evidence of what a sender said: its source cannot be deleted.
    source_id: Mapped[int] = mapped_column(
        ForeignKey("sources.id", ondelete="RESTRICT"), info={"erd_label": "sends"}
    )
    kind: Mapped[str40]
    webhook_id: Mapped[str255]
    # The provider's own topic or event type (``orders/create``), for the worker's mapping.
    topic: Mapped[str255 | None]
    content_type: Mapped[str255]
    headers: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    body: Mapped[bytes] = mapped_column(LargeBinary)
    status: Mapped[str40] = mapped_column(default=EventStatus.RECEIVED)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)
    # Field-level validation errors of an ``invalid`` event.
    errors: Mapped[list[Any] | None] = mapped_column(JSON)
    # What processing decided beyond the entities, e.g. an e-mail's thread decision.
    outcome: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    received_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    claimed_at: Mapped[dt.datetime | None]
    next_attempt_at: Mapped[dt.datetime | None]
    processed_at: Mapped[dt.datetime | None]
    # When the raw body was dropped (it is then empty) and by what: ``retention`` or
    # ``erasure`` (``BodyRemoval``). The metadata stays; such an event cannot be replayed.
    body_removed_at: Mapped[dt.datetime | None]
    body_removed_by: Mapped[str40 | None]

    entities: Mapped[list[EventEntity]] = relationship(
        cascade="all, delete-orphan", passive_deletes=True, order_by="EventEntity.entity_type"
    )


class EventEntity(Base):
    """What an event created or touched: the link from a request to its CRM effects."""

    __tablename__ = "event_entities"
    __table_args__ = (
        check_one_of("entity_type", EntityType),
        Index("ix_event_entities_entity_type_entity_id", "entity_type", "entity_id"),
    )

    event_id: Mapped[int] = mapped_column(
        BigId,
        ForeignKey("inbox_events.id", ondelete="CASCADE"),
        primary_key=True,
        info={"erd_label": "touched"},
    )
    entity_type: Mapped[str40] = mapped_column(primary_key=True)
    entity_id: Mapped[int] = mapped_column(BigId, primary_key=True)
