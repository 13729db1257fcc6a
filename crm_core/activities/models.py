"""Activity: a typed timeline entry that may concern any other entity (the seed's mesh)."""

from __future__ import annotations

import datetime as dt
import enum
from typing import TYPE_CHECKING, Any

from sqlalchemy import JSON, ForeignKey, Index, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from crm_core.db import Base, check_one_of, intpk, str40, utcnow

if TYPE_CHECKING:
    from crm_core.customers.models import Contact


class ActivityType(enum.StrEnum):
    LEAD_CAPTURED = "lead_captured"
    EMAIL_RECEIVED = "email_received"
    EMAIL_SENT = "email_sent"
    CALL = "call"
    MEETING = "meeting"
    NOTE = "note"
    CASE_OPENED = "case_opened"
    CASE_STATUS_CHANGED = "case_status_changed"
    CASE_COMMENT = "case_comment"
    CASE_ESCALATED = "case_escalated"
    ORDER_PLACED = "order_placed"
    ORDER_STATUS_CHANGED = "order_status_changed"
    # A sender's update older than what is stored: recorded, and nothing changed.
    STALE_UPDATE = "stale_update"
    DEAL_STAGE_CHANGED = "deal_stage_changed"
    AGREEMENT_SIGNED = "agreement_signed"
    CAMPAIGN_SENT = "campaign_sent"
    UNSUBSCRIBED = "unsubscribed"
    FOLLOWUP_DUE = "followup_due"
    # Mail that looks like a bounce but is not a verified report of our own message.
    BOUNCE_UNVERIFIED = "bounce_unverified"
    SUPPRESSION_REMOVED = "suppression_removed"
    # An e-mail provider's report that a message we sent bounced, drew a complaint, or
    # led to an unsubscribe.
    DELIVERY_REPORTED = "delivery_reported"


class Direction(enum.StrEnum):
    INBOUND = "inbound"
    OUTBOUND = "outbound"
    INTERNAL = "internal"


class Activity(Base):
    """One interaction: a meeting, an e-mail, a call, an order, a status change…"""

    __tablename__ = "activities"
    __table_args__ = (
        check_one_of("type", ActivityType),
        check_one_of("direction", Direction),
        Index("ix_activities_customer_id_occurred_at", "customer_id", "occurred_at"),
        Index("ix_activities_contact_id_occurred_at", "contact_id", "occurred_at"),
        Index("ix_activities_support_case_id_occurred_at", "support_case_id", "occurred_at"),
        Index("ix_activities_opportunity_id_occurred_at", "opportunity_id", "occurred_at"),
        Index("ix_activities_order_id", "order_id"),
        Index("ix_activities_agreement_id", "agreement_id"),
        Index("ix_activities_campaign_id", "campaign_id"),
        Index("ix_activities_event_id", "event_id"),
    )

    id: Mapped[intpk]
    type: Mapped[str40]
    direction: Mapped[str40] = mapped_column(default=Direction.INTERNAL)
    occurred_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    summary: Mapped[str] = mapped_column(Text)
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # An e-mail's Message-ID: the same message never makes a second Activity.
    message_id: Mapped[str | None] = mapped_column(Text, unique=True)
    # An inbound e-mail without a Message-ID: the digest of its bytes, so a replay is a no-op.
    message_key: Mapped[str | None] = mapped_column(Text, unique=True)
    # The entities an activity concerns. Deleting a customer deletes its history;
    # deleting anything else keeps the history and forgets the link.
    customer_id: Mapped[int | None] = mapped_column(
        ForeignKey("customers.id", ondelete="CASCADE"), info={"erd_label": "timeline"}
    )
    contact_id: Mapped[int | None] = mapped_column(
        ForeignKey("contacts.id", ondelete="SET NULL"), info={"erd_label": "involved_in"}
    )
    opportunity_id: Mapped[int | None] = mapped_column(
        ForeignKey("opportunities.id", ondelete="SET NULL"), info={"erd_label": "history"}
    )
    agreement_id: Mapped[int | None] = mapped_column(
        ForeignKey("agreements.id", ondelete="SET NULL"), info={"erd_label": "history"}
    )
    order_id: Mapped[int | None] = mapped_column(
        ForeignKey("orders.id", ondelete="SET NULL"), info={"erd_label": "history"}
    )
    support_case_id: Mapped[int | None] = mapped_column(
        ForeignKey("support_cases.id", ondelete="SET NULL"), info={"erd_label": "thread"}
    )
    campaign_id: Mapped[int | None] = mapped_column(
        ForeignKey("marketing_campaigns.id", ondelete="SET NULL"), info={"erd_label": "touches"}
    )
    # The inbox event this activity was recorded from, if any.
    event_id: Mapped[int | None] = mapped_column(
        ForeignKey("inbox_events.id", ondelete="SET NULL"), info={"erd_label": "recorded"}
    )

    contact: Mapped[Contact | None] = relationship()


class MessageReference(Base):
    """A Message-ID that an e-mail Activity named in In-Reply-To or References.

    Threading looks both ways: a reply finds its parent by the parent's
    Message-ID, and a message that is processed after its own reply finds the
    reply here, so the order in which a thread arrives does not matter.
    """

    __tablename__ = "message_references"

    activity_id: Mapped[int] = mapped_column(
        ForeignKey("activities.id", ondelete="CASCADE"),
        primary_key=True,
        info={"erd_label": "refers_to"},
    )
    message_id: Mapped[str] = mapped_column(Text, primary_key=True, index=True)
