"""Zendesk's ticket events in our terms (event-subscription webhooks, ``zen:event-type:ticket.*``).

Every ticket event carries the ticket as it stands after the event (``detail``),
so each handled event is the whole ticket: its subject, description, status
(``NEW OPEN PENDING HOLD SOLVED CLOSED``) and priority (``LOW NORMAL HIGH
URGENT``, or none: normal). ``detail.created_at`` starts the SLA clocks and
``detail.updated_at`` (else the event's ``time``) orders the updates, so a late
event changes nothing. A ``comment_added`` event adds its comment, keyed by the
comment's id; a public comment by staff (``author.is_staff``) is a response to
the requester. Zendesk's events name the requester only by ``requester_id``: the
contact is the source's user of that id, named by the requester's own comments.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from crm_core.payloads.schemas import TicketPriority, TicketStatus
from crm_core.providers.mapped import Loc, Mapped, first

TICKET_EVENT = "zen:event-type:ticket."
STATUSES = {
    "new": TicketStatus.NEW,
    "open": TicketStatus.OPEN,
    "pending": TicketStatus.PENDING,
    "hold": TicketStatus.ON_HOLD,
    "solved": TicketStatus.SOLVED,
    "closed": TicketStatus.CLOSED,
}
PRIORITIES = {
    "low": TicketPriority.LOW,
    "normal": TicketPriority.NORMAL,
    "high": TicketPriority.HIGH,
    "urgent": TicketPriority.URGENT,
}


def _object(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _word(value: Any) -> str:
    return str(value).strip().lower() if isinstance(value, str) else ""


def _id(value: Any) -> Any:
    """Zendesk's ids are strings in events; a number is taken as its digits."""
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


def _comment(comment: dict[str, Any], at: Any) -> dict[str, Any]:
    author = _object(comment.get("author"))
    return {
        "external_id": _id(comment.get("id")),
        "body": comment.get("body"),
        "author_name": author.get("name") or None,
        "by_agent": author.get("is_staff") is True,
        "public": comment.get("is_public") is not False,
        "created_at": at,
    }


def ticket(document: dict[str, Any]) -> Mapped:
    """A ticket event as the ticket it leaves behind, with the comment it adds."""
    detail = _object(document.get("detail"))
    event = _object(document.get("event"))
    ticket_id = _id(detail.get("id"))
    requester_id = _id(detail.get("requester_id"))
    comment = _object(event.get("comment"))
    author = _object(comment.get("author"))
    # The requester's name is known only from the requester's own comments.
    by_requester = requester_id is not None and _id(author.get("id")) == requester_id
    status = STATUSES.get(_word(detail.get("status")), TicketStatus.OPEN)
    mapped: dict[str, Any] = {
        "external_id": ticket_id,
        "subject": first(detail.get("subject"), f"Zendesk ticket {ticket_id}"),
        "description": detail.get("description") or None,
        "status": status,
        "priority": PRIORITIES.get(_word(detail.get("priority")), TicketPriority.NORMAL),
        "requester": {
            "external_id": requester_id,
            "name": author.get("name") if by_requester else None,
        },
        "opened_at": detail.get("created_at"),
        "updated_at": first(detail.get("updated_at"), document.get("time")),
        "comments": [_comment(comment, document.get("time"))] if comment else [],
    }
    origins: dict[Loc, Loc] = {
        ("external_id",): ("detail", "id"),
        ("subject",): ("detail", "subject"),
        ("description",): ("detail", "description"),
        ("requester",): ("detail", "requester_id"),
        ("requester", "external_id"): ("detail", "requester_id"),
        ("requester", "name"): ("event", "comment", "author", "name"),
        ("opened_at",): ("detail", "created_at"),
        ("updated_at",): ("detail", "updated_at"),
        ("comments", 0, "external_id"): ("event", "comment", "id"),
        ("comments", 0, "body"): ("event", "comment", "body"),
        ("comments", 0, "author_name"): ("event", "comment", "author", "name"),
        ("comments", 0, "created_at"): ("time",),
        ("comments",): ("event", "comment"),
    }
    return Mapped({k: v for k, v in mapped.items() if v is not None}, origins)


TOPICS = ("created", "status_changed", "priority_changed", "comment_added")

MAPPERS: dict[str, Callable[[dict[str, Any]], Mapped]] = {
    TICKET_EVENT + topic: ticket for topic in TOPICS
}
