"""Freshdesk's automation webhook in our terms: the ``freshdesk_webhook`` object of
the placeholders the rule sends (``{{ticket.id}}`` as ``ticket_id`` and so on).

The description is Freshdesk's HTML, kept as its text. Status and priority come
by name (``{{ticket.status}}``: ``Open``) or, from an Advanced rule that sends
the API's values, by number (status 2 open, 3 pending, 4 resolved, 5 closed;
priority 1 low to 4 urgent). A status an admin adds (``Waiting on Customer``)
is ``pending``, an unknown priority ``normal``. The ticket's
``ticket_created_at`` starts the SLA clocks; a ``ticket_updated_at``, when the
rule sends one, orders the updates so that a late one changes nothing.
Freshdesk's placeholders do not say who wrote a comment, so a Freshdesk ticket's
first response is not taken from them.
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
# Freshdesk's API numbers (https://developers.freshdesk.com/api/#tickets).
STATUS_CODES = {"2": "open", "3": "pending", "4": "resolved", "5": "closed"}
PRIORITY_CODES = {"1": "low", "2": "medium", "3": "high", "4": "urgent"}


def _word(value: Any, codes: dict[str, str] | None = None) -> str:
    word = str(value).strip().lower() if value is not None else ""
    return codes.get(word, word) if codes else word


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
        "status": STATUSES.get(
            _word(fields.get("ticket_status"), STATUS_CODES), TicketStatus.PENDING
        ),
        "priority": PRIORITIES.get(
            _word(fields.get("ticket_priority"), PRIORITY_CODES), TicketPriority.NORMAL
        ),
        "requester": {
            "email": fields.get("ticket_requester_email"),
            "name": fields.get("ticket_requester_name") or None,
        },
        "opened_at": fields.get("ticket_created_at"),
        "updated_at": fields.get("ticket_updated_at") or None,
    }
    origins: dict[Loc, Loc] = {
        ("external_id",): (ROOT, "ticket_id"),
        ("subject",): (ROOT, "ticket_subject"),
        ("description",): (ROOT, "ticket_description"),
        ("requester", "email"): (ROOT, "ticket_requester_email"),
        ("requester", "name"): (ROOT, "ticket_requester_name"),
        ("requester",): (ROOT, "ticket_requester_email"),
        ("opened_at",): (ROOT, "ticket_created_at"),
        ("updated_at",): (ROOT, "ticket_updated_at"),
    }
    return Mapped({k: v for k, v in mapped.items() if v is not None}, origins)


MAPPERS: dict[str, Callable[[dict[str, Any]], Mapped]] = {"automation": ticket}
