"""MarketingCampaign M:N Customer (members), per-recipient sends, and suppressions."""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from crm_core.db import (
    Base,
    BigId,
    Timestamped,
    Versioned,
    check_one_of,
    intpk,
    str40,
    str80,
    str255,
    utcnow,
)


class CampaignStatus(enum.StrEnum):
    DRAFT = "draft"
    SCHEDULED = "scheduled"
    SENDING = "sending"
    SENT = "sent"
    PAUSED = "paused"
    CANCELLED = "cancelled"
    # The dispatcher could not start it (or schedule its next run); ``failure_reason`` says why.
    FAILED = "failed"


class MemberStatus(enum.StrEnum):
    TARGETED = "targeted"
    RESPONDED = "responded"
    CONVERTED = "converted"


class SendStatus(enum.StrEnum):
    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"
    # Found ``sending`` after a crash: it may or may not have gone out. Never re-sent blindly.
    UNKNOWN = "unknown"


# Sends not sent (yet): what the backlog counts, and the condition of its partial index.
UNFINISHED_SENDS = "status IN ('pending', 'sending', 'failed', 'unknown')"


class MarketingCampaign(Versioned, Timestamped, Base):
    """A promotion: whom it targets, what it sends, when, and what it achieved.

    Its ``version`` (the ETag of ``GET /api/campaigns/<id>``) counts changes of this row only:
    status, schedule, content, run and failure, by people or by the dispatcher. The sends and
    their counts live in ``campaign_sends``, so a campaign being sent keeps its ETag.
    """

    __tablename__ = "marketing_campaigns"
    __table_args__ = (
        check_one_of("status", CampaignStatus),
        # The dispatcher's query: scheduled campaigns that are due.
        Index("ix_marketing_campaigns_status_send_at", "status", "send_at"),
    )

    id: Mapped[intpk]
    # The UTM campaign code leads are attributed by.
    code: Mapped[str80] = mapped_column(unique=True)
    name: Mapped[str255]
    status: Mapped[str40] = mapped_column(default=CampaignStatus.DRAFT)
    subject: Mapped[str | None] = mapped_column(Text)
    text_template: Mapped[str | None] = mapped_column(Text)
    html_template: Mapped[str | None] = mapped_column(Text)
    segment: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    send_at: Mapped[dt.datetime | None]
    schedule_cron: Mapped[str80 | None]
    # A recurring campaign is sent once per run; its send rows carry the run.
    current_run: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    started_at: Mapped[dt.datetime | None]
    completed_at: Mapped[dt.datetime | None]
    # Why the campaign is ``failed``, for the API and ``crm campaigns show``.
    failure_reason: Mapped[str | None] = mapped_column(Text)


class CampaignMember(Base):
    """Campaign M:N Customer: a targeted customer or prospect, and how it responded."""

    __tablename__ = "campaign_members"
    __table_args__ = (check_one_of("status", MemberStatus),)

    campaign_id: Mapped[int] = mapped_column(
        BigId,
        ForeignKey("marketing_campaigns.id", ondelete="CASCADE"),
        primary_key=True,
        info={"erd_label": "targets"},
    )
    customer_id: Mapped[int] = mapped_column(
        BigId,
        ForeignKey("customers.id", ondelete="CASCADE"),
        primary_key=True,
        index=True,
        info={"erd_label": "targeted_by"},
    )
    status: Mapped[str40] = mapped_column(default=MemberStatus.TARGETED)
    added_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    responded_at: Mapped[dt.datetime | None]


class CampaignSend(Base):
    """One message of a campaign run to one contact; sent at most once."""

    __tablename__ = "campaign_sends"
    __table_args__ = (
        check_one_of("status", SendStatus),
        UniqueConstraint("campaign_id", "run", "contact_id"),
        Index("ix_campaign_sends_campaign_id_status", "campaign_id", "status"),
        # The backlog: the sends waiting or gone wrong, without the (many) sent ones.
        Index(
            "ix_campaign_sends_unfinished",
            "status",
            "campaign_id",
            postgresql_where=text(UNFINISHED_SENDS),
            sqlite_where=text(UNFINISHED_SENDS),
        ),
    )

    id: Mapped[intpk]
    campaign_id: Mapped[int] = mapped_column(
        ForeignKey("marketing_campaigns.id", ondelete="CASCADE"), info={"erd_label": "sends"}
    )
    contact_id: Mapped[int] = mapped_column(
        ForeignKey("contacts.id", ondelete="CASCADE"), index=True, info={"erd_label": "receives"}
    )
    run: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    email: Mapped[str255]
    status: Mapped[str40] = mapped_column(default=SendStatus.PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    provider_message_id: Mapped[str | None] = mapped_column(Text)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    sending_at: Mapped[dt.datetime | None]
    sent_at: Mapped[dt.datetime | None]
