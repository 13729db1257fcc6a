"""What this platform sent (SentMessage), the verified reports of failure (MailBounce), the
providers' delivery reports applied (AppliedDeliveryReport), and the addresses never to mail
again (Suppression)."""

from __future__ import annotations

import datetime as dt
import enum

from sqlalchemy import ForeignKey, Index, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from crm_core.db import Base, Timestamped, check_one_of, intpk, str40, str255, utcnow


class SentKind(enum.StrEnum):
    CAMPAIGN = "campaign"
    CASE_REPLY = "case_reply"
    AUTO_ACK = "auto_ack"


class SentMessage(Base):
    """One message this platform handed to a mail system: a bounce must quote its Message-ID.

    A delivery report suppresses an address only when the Message-ID it quotes
    is here, sent to that address: one lookup on a unique index.
    """

    __tablename__ = "sent_messages"
    __table_args__ = (
        check_one_of("kind", SentKind),
        # A campaign's reported bounces and complaints: only the messages a report marked.
        Index(
            "ix_sent_messages_reported",
            "campaign_send_id",
            postgresql_where=text("report_outcome IS NOT NULL"),
            sqlite_where=text("report_outcome IS NOT NULL"),
        ),
    )

    id: Mapped[intpk]
    # Normalized: no angle brackets, as ``normalize_message_id`` returns it.
    message_id: Mapped[str] = mapped_column(Text, unique=True)
    recipient: Mapped[str255]
    kind: Mapped[str40]
    sent_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    # The id the provider's send API gave the message (Mailgun ``id``, SendGrid
    # ``X-Message-Id``, Postmark ``MessageID``), as ``normalize_provider_id`` returns it.
    provider_message_id: Mapped[str | None] = mapped_column(Text, index=True)
    # A campaign message's send row.
    campaign_send_id: Mapped[int | None] = mapped_column(
        ForeignKey("campaign_sends.id", ondelete="SET NULL"),
        index=True,
        info={"erd_label": "recorded_as"},
    )
    # What a delivery report last said of it (``ReportOutcome``): bounced, complained…
    report_outcome: Mapped[str40 | None]
    reported_at: Mapped[dt.datetime | None]


class MailBounce(Base):
    """A verified delivery failure of one recipient, permanent (5.x.x) or transient (4.x.x).

    Transient failures are counted per address over a window; ``report_key``
    (the report's Message-ID, or the key of its bytes) keeps a replayed report
    from counting twice.
    """

    __tablename__ = "mail_bounces"
    __table_args__ = (
        UniqueConstraint("report_key", "email_normalized"),
        Index("ix_mail_bounces_email_normalized_received_at", "email_normalized", "received_at"),
    )

    id: Mapped[intpk]
    email_normalized: Mapped[str255]
    report_key: Mapped[str] = mapped_column(Text)
    original_message_id: Mapped[str] = mapped_column(Text)
    status: Mapped[str40 | None]
    permanent: Mapped[bool]
    diagnostic: Mapped[str | None] = mapped_column(Text)
    received_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class AppliedDeliveryReport(Base):
    """A provider's delivery report, applied once: the same ``report_id`` again does nothing."""

    __tablename__ = "delivery_reports"
    __table_args__ = (UniqueConstraint("provider", "report_id"),)

    id: Mapped[intpk]
    provider: Mapped[str40]
    report_id: Mapped[str255]
    recipient: Mapped[str255]
    outcome: Mapped[str40]
    permanent: Mapped[bool]
    sent_message_id: Mapped[int | None] = mapped_column(
        ForeignKey("sent_messages.id", ondelete="SET NULL"), info={"erd_label": "reported_by"}
    )
    # What applying it did, or why it did nothing.
    result: Mapped[str] = mapped_column(Text)
    received_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class SuppressionReason(enum.StrEnum):
    UNSUBSCRIBED = "unsubscribed"
    BOUNCED = "bounced"
    COMPLAINED = "complained"
    MANUAL = "manual"
    # A person erased at their request: ``email_normalized`` holds a keyed hash of the
    # address (``erased_address_token``), never the address.
    ERASED = "erased"


class Suppression(Timestamped, Base):
    """An address we must not mail: unsubscribed, bounced, complained or blocked by hand."""

    __tablename__ = "suppressions"
    __table_args__ = (
        check_one_of("reason", SuppressionReason),
        # A campaign's stats read the suppressions made since it started.
        Index("ix_suppressions_created_at", "created_at"),
    )

    id: Mapped[intpk]
    email_normalized: Mapped[str255] = mapped_column(unique=True)
    reason: Mapped[str40]
    detail: Mapped[str | None] = mapped_column(Text)
    campaign_id: Mapped[int | None] = mapped_column(
        ForeignKey("marketing_campaigns.id", ondelete="SET NULL")
    )
    # The e-mail provider whose delivery report put it here (``mailgun``…), if one did.
    provider: Mapped[str40 | None]
