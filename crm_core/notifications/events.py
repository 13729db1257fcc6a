"""What each notification carries: one pydantic model per event type, and their JSON Schemas.

A notification's body is ``{"type": …, "timestamp": …, "data": {…}}``; ``data`` is the
event's model dumped as JSON. The models are the contract with subscribers: the
schemas in docs/notifications.md are generated from them (``crm notifications-docs``),
and a test fails when that page is stale. Fields are only ever added, never renamed.
"""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model


class _Part(BaseModel):
    """A part of a payload, read off an ORM row's attributes."""

    model_config = ConfigDict(extra="forbid", frozen=True, from_attributes=True)


class ContactSummary(_Part):
    id: int
    customer_id: int
    is_primary: bool
    email: str | None
    first_name: str | None
    last_name: str | None
    full_name: str | None
    phone: str | None = Field(description="E.164 when the number is valid, else null")
    job_title: str | None
    country: str | None


class CaseSummary(_Part):
    id: int
    subject: str
    status: str
    priority: str
    channel: str
    customer_id: int
    contact_id: int | None
    assignee: str | None
    first_response_due_at: dt.datetime | None


class OrderSummary(_Part):
    id: int
    order_number: str
    status: str
    currency: str
    total: Decimal = Field(description="exact, as a string")
    customer_id: int
    contact_id: int | None
    source_id: int | None
    ordered_at: dt.datetime


class DealSummary(_Part):
    id: int
    name: str
    stage: str
    amount: Decimal | None = Field(description="exact, as a string")
    currency: str | None
    customer_id: int
    contact_id: int | None
    closed_at: dt.datetime | None


class CampaignSummary(_Part):
    id: int
    code: str
    name: str
    run: int = Field(description="the run that finished; a recurring campaign has one per date")
    completed_at: dt.datetime


class FollowUp(_Part):
    id: int
    rule: str
    subject_type: str
    subject_id: int
    customer_id: int | None
    contact_id: int | None
    opportunity_id: int | None
    support_case_id: int | None
    owner: str | None
    title: str
    status: str
    due_at: dt.datetime
    completed_at: dt.datetime | None
    created_at: dt.datetime
    updated_at: dt.datetime


class FieldChange(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    before: Any
    after: Any


class EventData(BaseModel):
    """The ``data`` of one event type; ``event_type`` names it."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    event_type: ClassVar[str]


class CaseEscalated(EventData):
    """A case's first response is overdue; a follow-up task was created for it."""

    event_type: ClassVar[str] = "case.escalated"
    case: CaseSummary
    followup: FollowUp


class FollowUpCreated(EventData):
    """A follow-up rule created a task: a lead, a case or a deal waits for someone."""

    event_type: ClassVar[str] = "followup.created"
    followup: FollowUp


class LeadCreated(EventData):
    """A lead was captured: its contact was matched or created, with its customer."""

    event_type: ClassVar[str] = "lead.created"
    contact: ContactSummary
    created_contact: bool = Field(description="false when the lead matched a known contact")
    created_customer: bool
    opportunity_id: int | None = Field(description="the deal the lead asked about, if any")
    campaign_id: int | None = Field(description="the campaign of its UTM code, if any")
    source_id: int | None
    event_id: int | None = Field(description="the inbox event it came in")


class ContactUpdated(EventData):
    """A person changed a contact's fields (the write API or the console)."""

    event_type: ClassVar[str] = "contact.updated"
    contact: ContactSummary
    changes: dict[str, FieldChange] = Field(description="each changed field, before and after")


class CaseOpened(EventData):
    """A support case was opened, from a help-desk ticket or an e-mail."""

    event_type: ClassVar[str] = "case.opened"
    case: CaseSummary


class CaseStatusChanged(EventData):
    """A case moved from one status to another (a person, a help desk, a customer's reply)."""

    event_type: ClassVar[str] = "case.status_changed"
    case: CaseSummary
    previous_status: str
    status: str


class CaseAssigned(EventData):
    """A case's assignee changed; ``assignee`` is null when it was unassigned."""

    event_type: ClassVar[str] = "case.assigned"
    case: CaseSummary
    previous_assignee: str | None
    assignee: str | None


class OrderPlaced(EventData):
    """A new order arrived from a shop."""

    event_type: ClassVar[str] = "order.placed"
    order: OrderSummary


class OrderStatusChanged(EventData):
    """A known order moved to another status."""

    event_type: ClassVar[str] = "order.status_changed"
    order: OrderSummary
    previous_status: str
    status: str


class DealWon(EventData):
    """A deal reached the ``won`` stage."""

    event_type: ClassVar[str] = "deal.won"
    deal: DealSummary
    previous_stage: str | None = Field(description="null when the deal arrived already won")


class DealLost(EventData):
    """A deal reached the ``lost`` stage."""

    event_type: ClassVar[str] = "deal.lost"
    deal: DealSummary
    previous_stage: str | None = Field(description="null when the deal arrived already lost")


class CampaignFinished(EventData):
    """A campaign's run is over: no send is pending or sending any more."""

    event_type: ClassVar[str] = "campaign.finished"
    campaign: CampaignSummary
    sends: dict[str, int] = Field(description="the run's send rows by status: sent, failed…")


EVENTS: tuple[type[EventData], ...] = (
    LeadCreated,
    ContactUpdated,
    CaseOpened,
    CaseStatusChanged,
    CaseAssigned,
    CaseEscalated,
    OrderPlaced,
    OrderStatusChanged,
    DealWon,
    DealLost,
    CampaignFinished,
    FollowUpCreated,
)
EVENT_DATA: dict[str, type[EventData]] = {event.event_type: event for event in EVENTS}


def envelope_model(event_type: str) -> type[BaseModel]:
    """The whole body of a notification of ``event_type``, as a model."""
    data = EVENT_DATA[event_type]
    name = "".join(part.title() for part in event_type.replace(".", "_").split("_"))
    model: type[BaseModel] = create_model(
        f"{name}Notification",
        __config__=ConfigDict(extra="forbid"),
        __doc__=data.__doc__,
        type=(Literal[event_type], ...),  # type: ignore[arg-type]
        timestamp=(dt.datetime, ...),
        data=(data, ...),
    )
    return model


def envelope_schema(event_type: str) -> dict[str, Any]:
    """The JSON Schema of a notification's body (what a subscriber receives).

    The models refuse unknown fields, so nothing unannounced is emitted; the schemas
    leave them open, since a later version may add fields and receivers must accept that.
    """
    schema = _open(envelope_model(event_type).model_json_schema(mode="serialization"))
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = f"urn:crm:notification:{event_type}"
    return schema


def _open(node: Any) -> Any:
    """``node`` without ``"additionalProperties": false`` anywhere in it."""
    if isinstance(node, dict):
        return {
            key: _open(value)
            for key, value in node.items()
            if not (key == "additionalProperties" and value is False)
        }
    if isinstance(node, list):
        return [_open(value) for value in node]
    return node


def render_event_reference() -> str:
    """Markdown: one section per event type, its description and its JSON Schema."""
    sections = []
    for event_type, data in EVENT_DATA.items():
        schema = json.dumps(envelope_schema(event_type), indent=2, ensure_ascii=False)
        sections.append(
            f"### `{event_type}`\n\n{(data.__doc__ or '').strip()}\n\n```json\n{schema}\n```\n"
        )
    return "\n".join(sections)
