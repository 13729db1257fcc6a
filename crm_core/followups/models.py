"""FollowUpTask: something a person must do, created once per (rule, subject)."""

from __future__ import annotations

import datetime as dt
import enum

from sqlalchemy import ForeignKey, Index, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from crm_core.db import Base, BigId, Timestamped, check_one_of, intpk, str40, str80, str255


class FollowUpStatus(enum.StrEnum):
    OPEN = "open"
    DONE = "done"
    CANCELLED = "cancelled"


class SubjectType(enum.StrEnum):
    CONTACT = "contact"
    SUPPORT_CASE = "support_case"
    OPPORTUNITY = "opportunity"


class FollowUpTask(Timestamped, Base):
    """A reminder for an owner, fired once per rule and subject."""

    __tablename__ = "followup_tasks"
    __table_args__ = (
        check_one_of("status", FollowUpStatus),
        check_one_of("subject_type", SubjectType),
        UniqueConstraint("rule", "subject_type", "subject_id"),
        Index("ix_followup_tasks_status_due_at", "status", "due_at"),
    )

    id: Mapped[intpk]
    rule: Mapped[str80]
    subject_type: Mapped[str40]
    subject_id: Mapped[int] = mapped_column(BigId)
    customer_id: Mapped[int | None] = mapped_column(
        ForeignKey("customers.id", ondelete="CASCADE"), index=True, info={"erd_label": "awaits"}
    )
    contact_id: Mapped[int | None] = mapped_column(
        ForeignKey("contacts.id", ondelete="CASCADE"), index=True
    )
    opportunity_id: Mapped[int | None] = mapped_column(
        ForeignKey("opportunities.id", ondelete="CASCADE"), index=True
    )
    support_case_id: Mapped[int | None] = mapped_column(
        ForeignKey("support_cases.id", ondelete="CASCADE"), index=True
    )
    owner: Mapped[str255 | None]
    title: Mapped[str] = mapped_column(Text)
    status: Mapped[str40] = mapped_column(default=FollowUpStatus.OPEN)
    due_at: Mapped[dt.datetime]
    completed_at: Mapped[dt.datetime | None]
