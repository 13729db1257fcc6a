"""Payload schemas of the webhook kinds, validated with pydantic.

Fields a sender adds beyond these are ignored, so senders can evolve freely;
the stored raw body keeps them.
"""

from __future__ import annotations

import datetime as dt
import enum
from decimal import Decimal
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, JsonValue, model_validator


def _as_utc(value: dt.datetime) -> dt.datetime:
    """Senders often omit the zone; a time without one is taken as UTC."""
    if value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC)


UtcDateTime = Annotated[dt.datetime, AfterValidator(_as_utc)]

Text255 = Annotated[str, Field(max_length=255)]
LongText = Annotated[str, Field(max_length=100_000)]
Currency = Annotated[str, Field(pattern=r"^[A-Za-z]{3}$")]
# Money: a decimal (string or number) with at most 2 places and 12 integer digits.
Amount = Annotated[Decimal, Field(ge=0, max_digits=14, decimal_places=2, allow_inf_nan=False)]


class Payload(BaseModel):
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True, frozen=True)


class LeadDeal(Payload):
    name: Text255 | None = None
    amount: Amount | None = None
    currency: Currency | None = None
    close_date: dt.date | None = None


class ConsentChoice(enum.StrEnum):
    GRANTED = "granted"
    DENIED = "denied"
    UNKNOWN = "unknown"


class LeadConsent(Payload):
    """The person's marketing consent as the sender knows it; without ``at``, the time the
    event arrived. The latest statement by time wins (``crm_core.customers.consent``)."""

    status: ConsentChoice
    at: UtcDateTime | None = None
    # How it was collected: ``single_opt_in``, ``confirmed_opt_in``, ``form_checkbox``…
    method: Annotated[str, Field(max_length=80)] | None = None


class LeadPayload(Payload):
    """A lead from a web form, a landing page, an ad platform…"""

    email: Text255 | None = None
    phone: Annotated[str, Field(max_length=80)] | None = None
    first_name: Annotated[str, Field(max_length=80)] | None = None
    last_name: Annotated[str, Field(max_length=80)] | None = None
    full_name: Text255 | None = None
    company: Text255 | None = None
    job_title: Text255 | None = None
    country: Annotated[str, Field(max_length=80)] | None = None
    external_id: Text255 | None = None
    message: LongText | None = None
    utm_source: Text255 | None = None
    utm_medium: Text255 | None = None
    utm_campaign: Annotated[str, Field(max_length=80)] | None = None
    deal: LeadDeal | None = None
    consent: LeadConsent | None = None
    # Other fields the sender collected (a web form's own inputs): kept, as given, in the
    # lead's Activity and nowhere else.
    extra_fields: (
        Annotated[dict[Text255, Annotated[str, Field(max_length=2000)]], Field(max_length=50)]
        | None
    ) = None
    # What the sender says about the person beyond these fields (a shop's SMS consent,
    # say), kept in the contact's attributes; the latest statement wins.
    attributes: Annotated[dict[Text255, JsonValue], Field(max_length=50)] | None = None

    @model_validator(mode="after")
    def _email_or_phone(self) -> LeadPayload:
        if not self.email and not self.phone:
            raise ValueError("a lead needs at least one of email or phone")
        return self


class TicketStatus(enum.StrEnum):
    NEW = "new"
    OPEN = "open"
    PENDING = "pending"
    ON_HOLD = "on_hold"
    SOLVED = "solved"
    RESOLVED = "resolved"
    CLOSED = "closed"


class TicketPriority(enum.StrEnum):
    LOW = "low"
    NORMAL = "normal"
    MEDIUM = "medium"
    HIGH = "high"
    URGENT = "urgent"


class Requester(Payload):
    email: Text255
    name: Text255 | None = None


class TicketComment(Payload):
    author_email: Text255 | None = None
    body: LongText
    created_at: UtcDateTime | None = None
    external_id: Text255 | None = None


class TicketPayload(Payload):
    """A support ticket from a help desk."""

    external_id: Text255
    subject: Annotated[str, Field(min_length=1, max_length=998)]
    description: LongText | None = None
    status: TicketStatus = TicketStatus.NEW
    priority: TicketPriority = TicketPriority.NORMAL
    requester: Requester
    comments: Annotated[list[TicketComment], Field(max_length=500)] = []
    # When the help desk opened the ticket: the first-response clock starts then
    # (never later than when we hear of it).
    opened_at: UtcDateTime | None = None


class OrderLinePayload(Payload):
    sku: Annotated[str, Field(min_length=1, max_length=80)]
    name: Text255 | None = None
    quantity: Annotated[int, Field(gt=0, le=1_000_000)]
    unit_price: Amount


class OrderState(enum.StrEnum):
    """Where an order stands; a sender that says nothing leaves it ``placed``."""

    PLACED = "placed"
    PAID = "paid"
    FULFILLED = "fulfilled"
    CANCELLED = "cancelled"
    REFUNDED = "refunded"
    PARTIALLY_REFUNDED = "partially_refunded"


class OrderPayload(Payload):
    """A completed purchase from a shop.

    Without ``subtotal``, ``discount_total``, ``tax_total`` and ``shipping_total``
    a stated ``total`` must be the lines' sum. With any of them, ``subtotal`` is
    the lines' sum (stated or not) and ``total = subtotal - discount_total +
    tax_total + shipping_total``, to the cent.
    """

    order_number: Annotated[str, Field(min_length=1, max_length=80)]
    email: Text255
    currency: Currency
    lines: Annotated[list[OrderLinePayload], Field(min_length=1, max_length=1000)]
    # Checked against the lines when the order is processed.
    total: Amount | None = None
    subtotal: Amount | None = None
    discount_total: Amount | None = None
    tax_total: Amount | None = None
    shipping_total: Amount | None = None
    status: OrderState | None = None
    ordered_at: UtcDateTime | None = None
    # When the sender last changed the order: an update older than the stored one changes nothing.
    updated_at: UtcDateTime | None = None


class DealStage(enum.StrEnum):
    NEW = "new"
    QUALIFIED = "qualified"
    PROPOSAL = "proposal"
    WON = "won"
    LOST = "lost"


class DealPayload(Payload):
    """A deal (opportunity) update from a sales tool."""

    external_id: Text255
    email: Text255
    name: Text255
    amount: Amount | None = None
    currency: Currency | None = None
    stage: DealStage = DealStage.NEW
    close_date: dt.date | None = None


class EmailAttachment(Payload):
    filename: Text255 | None = None
    content_type: Text255 = "application/octet-stream"
    # Base64 of the content.
    content: str


class EmailPayload(Payload):
    """An inbound e-mail as JSON (providers' inbound-parse webhooks)."""

    from_: Annotated[str, Field(alias="from", min_length=1, max_length=998)]
    to: Annotated[list[Annotated[str, Field(max_length=998)]], Field(max_length=500)] = []
    cc: Annotated[list[Annotated[str, Field(max_length=998)]], Field(max_length=500)] = []
    reply_to: Annotated[str, Field(max_length=998)] | None = None
    subject: Annotated[str, Field(max_length=998)] = ""
    text: str | None = None
    html: str | None = None
    message_id: Annotated[str, Field(max_length=998)] | None = None
    in_reply_to: Annotated[str, Field(max_length=998)] | None = None
    references: Annotated[list[Annotated[str, Field(max_length=998)]], Field(max_length=500)] = []
    date: UtcDateTime | None = None
    headers: dict[str, str] = {}
    attachments: Annotated[list[EmailAttachment], Field(max_length=100)] = []

    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)


PAYLOAD_SCHEMAS: dict[str, type[Payload]] = {
    "leads": LeadPayload,
    "tickets": TicketPayload,
    "orders": OrderPayload,
    "deals": DealPayload,
    "emails": EmailPayload,
}
