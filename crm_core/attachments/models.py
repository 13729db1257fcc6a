"""StoredAttachment: one file an e-mail Activity carried, its bytes in the blob store."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from crm_core.db import Base, intpk, utcnow


class StoredAttachment(Base):
    """An attachment of an Activity; its content is the blob of its ``sha256``.

    Many rows may name one blob (the same file sent twice is kept once). The row goes
    with its Activity (and so with its customer); the blob goes when no row names it.
    """

    __tablename__ = "attachments"
    __table_args__ = (
        CheckConstraint("size >= 0", name="size_not_negative"),
        CheckConstraint("length(sha256) = 64", name="sha256_hex"),
        Index("ix_attachments_activity_id", "activity_id"),
        Index("ix_attachments_sha256", "sha256"),
    )

    id: Mapped[intpk]
    activity_id: Mapped[int] = mapped_column(
        ForeignKey("activities.id", ondelete="CASCADE"), info={"erd_label": "carries"}
    )
    filename: Mapped[str | None] = mapped_column(Text)
    content_type: Mapped[str] = mapped_column(String(255))
    size: Mapped[int] = mapped_column(BigInteger)
    # The blob's key: hex SHA-256 of the content.
    sha256: Mapped[str] = mapped_column(String(64))
    # Shown in the body (``Content-Disposition: inline`` or referenced by Content-ID).
    inline: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
