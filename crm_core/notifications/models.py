"""Subscriptions, the deliveries owed to them (an outbox), and each attempt made."""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Text
from sqlalchemy.orm import Mapped, mapped_column

from crm_core.db import Base, Timestamped, check_one_of, intpk, str40, str80, utcnow
from crm_core.encryption.types import EncryptedString


class DeliveryStatus(enum.StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"


class Subscription(Timestamped, Base):
    """A URL that receives the events it subscribed to, signed with its own secret."""

    __tablename__ = "subscriptions"

    id: Mapped[intpk]
    url: Mapped[str] = mapped_column(Text)
    # Event types ("case.escalated", …) or "*" for every event.
    events: Mapped[list[str]] = mapped_column(JSON)
    # ``whsec_`` + base64; HMAC needs the secret itself, so it cannot be hashed:
    # it is encrypted at rest instead (crm_core.encryption).
    secret: Mapped[str] = mapped_column(EncryptedString(255))
    enabled: Mapped[bool] = mapped_column(default=True)


class NotificationDelivery(Timestamped, Base):
    """One event owed to one subscription, written in the transaction that caused it."""

    __tablename__ = "notification_deliveries"
    __table_args__ = (
        check_one_of("status", DeliveryStatus),
        Index("ix_notification_deliveries_status_next_attempt_at", "status", "next_attempt_at"),
    )

    id: Mapped[intpk]
    subscription_id: Mapped[int] = mapped_column(
        ForeignKey("subscriptions.id", ondelete="CASCADE"),
        index=True,
        info={"erd_label": "owed"},
    )
    event_type: Mapped[str80]
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str40] = mapped_column(default=DeliveryStatus.PENDING)
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    delivered_at: Mapped[dt.datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)


class DeliveryAttempt(Base):
    """One POST of a delivery: when, how long, and what came back."""

    __tablename__ = "delivery_attempts"

    id: Mapped[intpk]
    delivery_id: Mapped[int] = mapped_column(
        ForeignKey("notification_deliveries.id", ondelete="CASCADE"),
        index=True,
        info={"erd_label": "tried"},
    )
    attempted_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    duration_ms: Mapped[int]
    status_code: Mapped[int | None]
    error: Mapped[str | None] = mapped_column(Text)
