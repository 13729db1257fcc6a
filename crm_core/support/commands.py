"""What the support services are asked to record: a help-desk ticket and its comments.

Plain values in the domain's terms; whoever parsed a sender's payload builds them.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass


@dataclass(frozen=True)
class TicketCommentCommand:
    """One comment of a ticket; without an external id it is known by its content."""

    body: str
    author_email: str | None = None
    created_at: dt.datetime | None = None
    external_id: str | None = None


@dataclass(frozen=True)
class TicketCommand:
    """A ticket by its sender's id, in the help desk's words for status and priority
    (``TICKET_STATUS`` and ``TICKET_PRIORITY`` map them to ours)."""

    external_id: str
    subject: str
    description: str | None = None
    status: str = "new"
    priority: str = "normal"
    comments: tuple[TicketCommentCommand, ...] = ()
    # When the help desk opened the ticket: the first-response clock starts then.
    opened_at: dt.datetime | None = None
