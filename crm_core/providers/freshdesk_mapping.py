"""Freshdesk's automation webhook in our terms: the ``freshdesk_webhook`` object of
the placeholders the rule sends (``{{ticket.id}}`` as ``ticket_id`` and so on).

The description is Freshdesk's HTML, kept as its text. A status or priority
Freshdesk lets an admin add (``Waiting on Customer``) is ``pending`` / ``normal``.
The ticket's ``ticket_created_at`` starts the first-response clock.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from crm_core.mail.html_text import html_to_text
from crm_core.payloads.schemas import TicketPriority, TicketStatus
from crm_core.providers.mapped import Loc, Mapped

ROOT = "freshdesk_webhook"
STATUSES = {
    "open": TicketStatus.OPEN,
    "pending": TicketStatus.PENDING,
    "resolved": TicketStatus.RESOLVED,
    "closed": TicketStatus.CLOSED,
}
PRIORITIES = {
    "low": TicketPriority.LOW,
    "medium": TicketPriority.MEDIUM,
    "high": TicketPriority.HIGH,
    "urgent": TicketPriority.URGENT,
}


def _word(value: Any) -> str:
    return str(value).strip().lower() if value is not None else ""


def ticket(document: dict[str, Any]) -> Mapped:
    """A ticket rule's webhook as a ticket."""
    fields = document.get(ROOT)
    fields = fields if isinstance(fields, dict) else {}
    ticket_id = fields.get("ticket_id")
    description = fields.get("ticket_description")
    mapped = {
        "external_id": str(ticket_id) if isinstance(ticket_id, int | str) else ticket_id,
        "subject": fields.get("ticket_subject"),
        "description": html_to_text(description) if isinstance(description, str) else None,
        "status": STATUSES.get(_word(fields.get("ticket_status")), TicketStatus.PENDING),
        "priority": PRIORITIES.get(_word(fields.get("ticket_priority")), TicketPriority.NORMAL),
        "requester": {
            "email": fields.get("ticket_requester_email"),
            "name": fields.get("ticket_requester_name") or None,
        },
        "opened_at": fields.get("ticket_created_at"),
    }
    origins: dict[Loc, Loc] = {
        ("external_id",): (ROOT, "ticket_id"),
        ("subject",): (ROOT, "ticket_subject"),
        ("description",): (ROOT, "ticket_description"),
        ("requester", "email"): (ROOT, "ticket_requester_email"),
        ("requester", "name"): (ROOT, "ticket_requester_name"),
        ("requester",): (ROOT, "ticket_requester_email"),
        ("opened_at",): (ROOT, "ticket_created_at"),
    }
    return Mapped({k: v for k, v in mapped.items() if v is not None}, origins)


MAPPERS: dict[str, Callable[[dict[str, Any]], Mapped]] = {"automation": ticket}
