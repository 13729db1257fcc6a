"""What the sales services are asked to record: an order with its lines, a deal's update.

Plain values in the domain's terms; whoever parsed a sender's payload builds them.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal


@dataclass(frozen=True)
class OrderLineCommand:
    """One line of an order: a product by SKU, how many, at what unit price."""

    sku: str
    quantity: int
    unit_price: Decimal
    name: str | None = None


@dataclass(frozen=True)
class OrderCommand:
    """An order by its number; amounts as stated (checked by ``check_order_total``)."""

    order_number: str
    currency: str
    lines: tuple[OrderLineCommand, ...]
    total: Decimal | None = None
    subtotal: Decimal | None = None
    discount_total: Decimal | None = None
    tax_total: Decimal | None = None
    shipping_total: Decimal | None = None
    # An ``OrderStatus`` value; ``None`` leaves a new order ``placed`` and an old one as it is.
    status: str | None = None
    ordered_at: dt.datetime | None = None
    # When the sender last changed the order: an update older than the stored one changes nothing.
    updated_at: dt.datetime | None = None
    # Other ids the sender knows the order by (its own id, a payment's, an invoice's): a refund
    # names the order by one of them.
    references: tuple[str, ...] = ()


@dataclass(frozen=True)
class DealCommand:
    """A deal (opportunity) by its sender's id, at an ``OpportunityStage``."""

    external_id: str
    name: str
    stage: str = "new"
    amount: Decimal | None = None
    currency: str | None = None
    close_date: dt.date | None = None
    # When the sender last changed the deal: an update older than the stored one changes nothing.
    updated_at: dt.datetime | None = None


@dataclass(frozen=True)
class RefundCommand:
    """Money given back on an order the same source sent before, named by its number or one of
    its references; with its own ``amount`` (counted once per ``refund_id``), the order's
    ``refunded_total`` so far, or ``full``."""

    order_number: str | None = None
    order_references: tuple[str, ...] = ()
    refund_id: str | None = None
    amount: Decimal | None = None
    refunded_total: Decimal | None = None
    full: bool | None = None
    currency: str | None = None
    refunded_at: dt.datetime | None = None
