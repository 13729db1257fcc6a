"""The way from a deal to a sale: Opportunity → Agreement, Order M:N Product."""

from __future__ import annotations

import datetime as dt
import enum
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Column,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
    true,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from crm_core.db import (
    Base,
    BigId,
    Timestamped,
    Versioned,
    check_one_of,
    intpk,
    money,
    str40,
    str80,
    str255,
)

if TYPE_CHECKING:
    from crm_core.customers.models import Customer


class ProductKind(enum.StrEnum):
    PRODUCT = "product"
    SERVICE = "service"


class OpportunityStage(enum.StrEnum):
    NEW = "new"
    QUALIFIED = "qualified"
    PROPOSAL = "proposal"
    WON = "won"
    LOST = "lost"

    @property
    def is_open(self) -> bool:
        return self not in (OpportunityStage.WON, OpportunityStage.LOST)


class AgreementStatus(enum.StrEnum):
    DRAFT = "draft"
    ACTIVE = "active"
    TERMINATED = "terminated"
    EXPIRED = "expired"


class OrderStatus(enum.StrEnum):
    PLACED = "placed"
    PAID = "paid"
    FULFILLED = "fulfilled"
    CANCELLED = "cancelled"
    REFUNDED = "refunded"
    PARTIALLY_REFUNDED = "partially_refunded"


class Product(Timestamped, Base):
    """A product or service that can be ordered."""

    __tablename__ = "products"
    __table_args__ = (
        check_one_of("kind", ProductKind),
        CheckConstraint("unit_price >= 0", name="unit_price_not_negative"),
        CheckConstraint("stock_quantity IS NULL OR stock_quantity >= 0", name="stock_not_negative"),
        Index("ix_products_updated_at_id", "updated_at", "id"),
    )

    id: Mapped[intpk]
    sku: Mapped[str80] = mapped_column(unique=True)
    name: Mapped[str255]
    description: Mapped[str | None] = mapped_column(Text)
    kind: Mapped[str40] = mapped_column(default=ProductKind.PRODUCT)
    unit_price: Mapped[money | None]
    currency: Mapped[str | None] = mapped_column(String(3))
    # NULL: stock is not tracked (services, drop-shipped goods).
    stock_quantity: Mapped[int | None] = mapped_column(Integer)
    active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())


class Opportunity(Versioned, Timestamped, Base):
    """A potential deal with exactly one customer; it lives and dies with that customer."""

    __tablename__ = "opportunities"
    __table_args__ = (
        check_one_of("stage", OpportunityStage),
        CheckConstraint("amount IS NULL OR amount >= 0", name="amount_not_negative"),
        UniqueConstraint("source_id", "external_id"),
        Index("ix_opportunities_stage_updated_at", "stage", "updated_at"),
        Index("ix_opportunities_expected_close_date", "expected_close_date"),
        Index("ix_opportunities_updated_at_id", "updated_at", "id"),
        Index("ix_opportunities_owner_updated_at_id", "owner", "updated_at", "id"),
    )

    id: Mapped[intpk]
    customer_id: Mapped[int] = mapped_column(
        ForeignKey("customers.id", ondelete="CASCADE"), index=True, info={"erd_label": "belongs_to"}
    )
    contact_id: Mapped[int | None] = mapped_column(
        ForeignKey("contacts.id", ondelete="SET NULL"), index=True
    )
    source_id: Mapped[int | None] = mapped_column(ForeignKey("sources.id", ondelete="SET NULL"))
    external_id: Mapped[str255 | None]
    name: Mapped[str255]
    description: Mapped[str | None] = mapped_column(Text)
    stage: Mapped[str40] = mapped_column(default=OpportunityStage.NEW)
    amount: Mapped[money | None]
    currency: Mapped[str | None] = mapped_column(String(3))
    expected_close_date: Mapped[dt.date | None] = mapped_column(Date)
    closed_at: Mapped[dt.datetime | None]
    owner: Mapped[str255 | None]
    # When the sender last changed the deal, as it says: an older update changes nothing.
    source_updated_at: Mapped[dt.datetime | None]

    customer: Mapped[Customer] = relationship("Customer", back_populates="opportunities")
    agreements: Mapped[list[Agreement]] = relationship(
        secondary="agreement_opportunities", back_populates="opportunities"
    )


# Agreement M:N Opportunity (the seed's dotted, non-identifying relationship):
# a framework agreement may cover several deals, and a deal may gain amendments.
agreement_opportunities = Table(
    "agreement_opportunities",
    Base.metadata,
    Column(
        "agreement_id",
        BigId,
        ForeignKey("agreements.id", ondelete="CASCADE"),
        primary_key=True,
        info={"erd_label": "covers"},
    ),
    Column(
        "opportunity_id",
        BigId,
        ForeignKey("opportunities.id", ondelete="CASCADE"),
        primary_key=True,
        index=True,
        info={"erd_label": "results_in"},
    ),
)


class Agreement(Versioned, Timestamped, Base):
    """A signed, legally binding contract, opened by a customer."""

    __tablename__ = "agreements"
    __table_args__ = (
        check_one_of("status", AgreementStatus),
        CheckConstraint(
            "terminates_on IS NULL OR terminates_on >= effective_on", name="valid_period"
        ),
        Index("ix_agreements_terminates_on", "terminates_on"),
        Index("ix_agreements_updated_at_id", "updated_at", "id"),
    )

    id: Mapped[intpk]
    number: Mapped[str40] = mapped_column(unique=True)
    # Legal records outlive a customer's deletion request: deleting is refused.
    customer_id: Mapped[int] = mapped_column(
        ForeignKey("customers.id", ondelete="RESTRICT"), index=True, info={"erd_label": "opens"}
    )
    # The won opportunity this agreement was created from; at most one agreement each.
    origin_opportunity_id: Mapped[int | None] = mapped_column(
        ForeignKey("opportunities.id", ondelete="SET NULL"),
        unique=True,
        info={"erd_label": "signed_as"},
    )
    title: Mapped[str255]
    status: Mapped[str40] = mapped_column(default=AgreementStatus.ACTIVE)
    terms: Mapped[str | None] = mapped_column(Text)
    signed_at: Mapped[dt.datetime | None]
    effective_on: Mapped[dt.date] = mapped_column(Date)
    terminates_on: Mapped[dt.date | None] = mapped_column(Date)
    # The seed lets an agreement apply to a whole class of matching customers.
    applies_to_segment: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    amount: Mapped[money | None]
    currency: Mapped[str | None] = mapped_column(String(3))

    opportunities: Mapped[list[Opportunity]] = relationship(
        secondary=agreement_opportunities, back_populates="agreements"
    )


class Order(Versioned, Timestamped, Base):
    """A completed purchase: products with quantities and a total price."""

    __tablename__ = "orders"
    __table_args__ = (
        check_one_of("status", OrderStatus),
        CheckConstraint("total >= 0", name="total_not_negative"),
        UniqueConstraint("source_id", "order_number"),
        Index("ix_orders_ordered_at", "ordered_at"),
        Index("ix_orders_updated_at_id", "updated_at", "id"),
        Index("ix_orders_status_updated_at_id", "status", "updated_at", "id"),
        Index("ix_orders_customer_id_updated_at_id", "customer_id", "updated_at", "id"),
    )

    id: Mapped[intpk]
    customer_id: Mapped[int] = mapped_column(
        ForeignKey("customers.id", ondelete="RESTRICT"), index=True, info={"erd_label": "places"}
    )
    contact_id: Mapped[int | None] = mapped_column(
        ForeignKey("contacts.id", ondelete="SET NULL"), index=True
    )
    source_id: Mapped[int | None] = mapped_column(ForeignKey("sources.id", ondelete="SET NULL"))
    order_number: Mapped[str80]
    status: Mapped[str40] = mapped_column(default=OrderStatus.PLACED)
    currency: Mapped[str] = mapped_column(String(3))
    # total = subtotal - discount_total + tax_total + shipping_total, to the cent.
    subtotal: Mapped[money] = mapped_column(default=0, server_default="0")
    discount_total: Mapped[money] = mapped_column(default=0, server_default="0")
    tax_total: Mapped[money] = mapped_column(default=0, server_default="0")
    shipping_total: Mapped[money] = mapped_column(default=0, server_default="0")
    total: Mapped[money]
    # What has been refunded so far: refunded when it reaches the total, else partly.
    refunded_total: Mapped[money] = mapped_column(default=0, server_default="0")
    # When the sender last changed the order, as it says: an older update changes nothing.
    source_updated_at: Mapped[dt.datetime | None]
    ordered_at: Mapped[dt.datetime]

    lines: Mapped[list[OrderLine]] = relationship(
        back_populates="order",
        cascade="all, delete-orphan",
        passive_deletes=True,
        order_by="OrderLine.line_no",
    )


class OrderLine(Base):
    """Order M:N Product: one product on an order, with quantity and price."""

    __tablename__ = "order_lines"
    __table_args__ = (
        UniqueConstraint("order_id", "line_no"),
        CheckConstraint("quantity > 0", name="quantity_positive"),
        CheckConstraint("unit_price >= 0", name="unit_price_not_negative"),
    )

    id: Mapped[intpk]
    order_id: Mapped[int] = mapped_column(
        ForeignKey("orders.id", ondelete="CASCADE"), info={"erd_label": "lists"}
    )
    # A product on an order cannot be deleted; deactivate it instead.
    product_id: Mapped[int] = mapped_column(
        ForeignKey("products.id", ondelete="RESTRICT"), index=True, info={"erd_label": "ordered_in"}
    )
    line_no: Mapped[int] = mapped_column(Integer)
    description: Mapped[str255 | None]
    quantity: Mapped[int] = mapped_column(Integer)
    unit_price: Mapped[money]
    line_total: Mapped[money]

    order: Mapped[Order] = relationship(back_populates="lines")
    product: Mapped[Product] = relationship()
