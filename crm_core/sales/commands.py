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


@dataclass(frozen=True)
class DealCommand:
    """A deal (opportunity) by its sender's id, at an ``OpportunityStage``."""

    external_id: str
    name: str
    stage: str = "new"
    amount: Decimal | None = None
    currency: str | None = None
    close_date: dt.date | None = None
