"""SupportCase: a problem a customer reported, tracked to resolution with SLA due times."""

from __future__ import annotations

import datetime as dt
import enum
from typing import TYPE_CHECKING

from sqlalchemy import JSON, ForeignKey, Index, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from crm_core.db import Base, Timestamped, Versioned, check_one_of, intpk, str40, str255

if TYPE_CHECKING:
    from crm_core.customers.models import Contact


class CaseStatus(enum.StrEnum):
    NEW = "new"
    OPEN = "open"
    PENDING = "pending"
    RESOLVED = "resolved"
    CLOSED = "closed"


class CasePriority(enum.StrEnum):
    LOW = "low"
    NORMAL = "normal"
    HIGH = "high"
    URGENT = "urgent"


class CaseChannel(enum.StrEnum):
    EMAIL = "email"
    WEBHOOK = "webhook"
    API = "api"


OPEN_CASE_STATUSES = (CaseStatus.NEW.value, CaseStatus.OPEN.value, CaseStatus.PENDING.value)


def _open_and_owing(name: str, due: str, met: str, *also: str) -> Index:
    """A partial index on ``due`` (then ``also``) of the open cases whose ``met`` is not set."""
    listed = ", ".join(f"'{status}'" for status in OPEN_CASE_STATUSES)
    where = text(f"status IN ({listed}) AND {met} IS NULL")
    return Index(name, due, *also, postgresql_where=where, sqlite_where=where)


class SupportCase(Versioned, Timestamped, Base):
    """A support request, from first report to resolution."""

    __tablename__ = "support_cases"
    __table_args__ = (
        check_one_of("status", CaseStatus),
        check_one_of("priority", CasePriority),
        check_one_of("channel", CaseChannel),
        UniqueConstraint("source_id", "external_id"),
        # The SLA sweep: open cases whose first response is due.
        Index("ix_support_cases_status_first_response_due_at", "status", "first_response_due_at"),
        # Open cases past a due time they have not met (the overview's SLA breaches): only
        # the cases still owing that answer, so the count reads a slice of an index.
        _open_and_owing(
            "ix_support_cases_open_first_response_due_at",
            "first_response_due_at",
            "first_responded_at",
        ),
        # With the first response's columns, so that a case counted in the first index is
        # left out of the second's count without reading the table.
        _open_and_owing(
            "ix_support_cases_open_resolution_due_at",
            "resolution_due_at",
            "resolved_at",
            "first_response_due_at",
            "first_responded_at",
        ),
        # The case list's keyset order, alone and behind its usual filters.
        Index("ix_support_cases_updated_at_id", "updated_at", "id"),
        Index("ix_support_cases_status_updated_at_id", "status", "updated_at", "id"),
        Index(
            "ix_support_cases_assignee_status_updated_at_id",
            "assignee",
            "status",
            "updated_at",
            "id",
        ),
    )

    id: Mapped[intpk]
    customer_id: Mapped[int] = mapped_column(
        ForeignKey("customers.id", ondelete="CASCADE"), index=True, info={"erd_label": "reports"}
    )
    contact_id: Mapped[int | None] = mapped_column(
        ForeignKey("contacts.id", ondelete="SET NULL"), index=True, info={"erd_label": "requests"}
    )
    source_id: Mapped[int | None] = mapped_column(ForeignKey("sources.id", ondelete="SET NULL"))
    external_id: Mapped[str255 | None]
    subject: Mapped[str] = mapped_column(Text)
    description: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str40] = mapped_column(default=CaseStatus.NEW)
    priority: Mapped[str40] = mapped_column(default=CasePriority.NORMAL)
    channel: Mapped[str40] = mapped_column(default=CaseChannel.WEBHOOK)
    # The Message-ID that opened the case: replies thread onto it.
    root_message_id: Mapped[str | None] = mapped_column(Text, index=True)
    # When the case was opened where it was opened (a help desk's ticket): the SLA clocks
    # start then. ``None`` for a case opened here, whose clocks start at ``created_at``.
    opened_at: Mapped[dt.datetime | None]
    # When the help desk last changed the ticket, as it says: an older update changes nothing.
    source_updated_at: Mapped[dt.datetime | None]
    first_response_due_at: Mapped[dt.datetime | None]
    first_responded_at: Mapped[dt.datetime | None]
    resolution_due_at: Mapped[dt.datetime | None]
    resolved_at: Mapped[dt.datetime | None]
    assignee: Mapped[str255 | None]
    tags: Mapped[list[str]] = mapped_column(JSON, default=list)

    contact: Mapped[Contact | None] = relationship()
