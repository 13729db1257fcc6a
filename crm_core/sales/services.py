"""Orders and deals: products upserted by SKU, orders by number, deals by external id."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from crm_core.activities.models import Activity, ActivityType, Direction
from crm_core.activities.stale import is_stale, iso, record_stale_update
from crm_core.base.entities import EntityType, ExternalRef
from crm_core.base.touched import Touched
from crm_core.customers.models import Contact, Customer, LifecycleStage
from crm_core.db import dialect_insert, insert_or_lock, utcnow
from crm_core.errors import FieldError, InvalidInput
from crm_core.notifications.events import OrderPlaced, OrderStatusChanged, OrderSummary
from crm_core.notifications.services import notify
from crm_core.sales.commands import OrderCommand, OrderLineCommand
from crm_core.sales.models import Order, OrderLine, OrderStatus, Product


def order_total(lines: Sequence[OrderLineCommand]) -> Decimal:
    """The sum of quantity times unit price, exactly (``Decimal``)."""
    return sum((line.unit_price * line.quantity for line in lines), Decimal("0"))


@dataclass(frozen=True)
class OrderTotals:
    """An order's amounts: ``total = subtotal - discount_total + tax_total + shipping_total``."""

    subtotal: Decimal
    discount_total: Decimal
    tax_total: Decimal
    shipping_total: Decimal
    total: Decimal

    def as_values(self) -> dict[str, Decimal]:
        """The amounts as the order's column values."""
        return {
            "subtotal": self.subtotal,
            "discount_total": self.discount_total,
            "tax_total": self.tax_total,
            "shipping_total": self.shipping_total,
            "total": self.total,
        }


def check_order_total(order: OrderCommand) -> OrderTotals:
    """The order's amounts, checked; ``InvalidInput`` names each one that does not add up.

    The subtotal is the lines' sum. Without discount, tax or shipping a stated
    ``total`` must be that sum (the rule of orders that state no breakdown); with
    them it must be ``subtotal - discount_total + tax_total + shipping_total``.
    """
    lines = order_total(order.lines)
    zero = Decimal("0")
    errors = []
    if order.subtotal is not None and order.subtotal != lines:
        message = f"subtotal {order.subtotal} does not match the lines' sum {lines}"
        errors.append(FieldError(("subtotal",), message))
    discount = order.discount_total or zero
    tax = order.tax_total or zero
    shipping = order.shipping_total or zero
    computed = lines - discount + tax + shipping
    if order.total is not None and order.total != computed:
        if discount or tax or shipping:
            message = (
                f"total {order.total} is not subtotal {lines} - discounts {discount}"
                f" + tax {tax} + shipping {shipping} = {computed}"
            )
        else:
            message = f"total {order.total} does not match the lines' sum {lines}"
        errors.append(FieldError(("total",), message))
    elif computed < zero:
        message = f"discounts {discount} exceed the subtotal with tax and shipping"
        errors.append(FieldError(("discount_total",), message))
    if errors:
        raise InvalidInput(errors)
    return OrderTotals(lines, discount, tax, shipping, computed)


def upsert_products(session: Session, *, lines: Sequence[OrderLineCommand]) -> dict[str, Product]:
    """The products of ``lines`` by SKU, creating the missing ones (race-safe)."""
    rows = {
        line.sku: {"sku": line.sku, "name": line.name or line.sku, "kind": "product"}
        for line in lines
    }
    now = utcnow()
    # Sorted, so two transactions inserting overlapping SKUs lock them in one order.
    values = [{**rows[sku], "created_at": now, "updated_at": now} for sku in sorted(rows)]
    session.execute(dialect_insert(session, Product).values(values).on_conflict_do_nothing())
    found = session.scalars(select(Product).where(Product.sku.in_(rows)))
    return {product.sku: product for product in found}


def promote_customer(customer: Customer) -> None:
    """A customer who bought or signed is a customer, whatever stage it was at."""
    if customer.lifecycle_stage != LifecycleStage.CUSTOMER:
        customer.lifecycle_stage = LifecycleStage.CUSTOMER


def remember_references(
    session: Session, *, source_id: int, order: Order, references: list[str]
) -> None:
    """Record the ids the sender knows ``order`` by (the first order to claim one keeps it)."""
    rows = [
        {
            "source_id": source_id,
            "entity_type": EntityType.ORDER,
            "external_id": reference,
            "entity_id": order.id,
            "created_at": utcnow(),
        }
        for reference in sorted(set(references))
    ]
    if rows:
        session.execute(
            dialect_insert(session, ExternalRef)
            .values(rows)
            .on_conflict_do_nothing(index_elements=["source_id", "entity_type", "external_id"])
        )


def record_order(
    session: Session, *, source_id: int, event_id: int | None, buyer: Contact, order: OrderCommand
) -> Touched:
    """Upsert the order ``(source, order number)`` with its lines for ``buyer``."""
    totals = check_order_total(order)
    total = totals.total
    status = order.status or OrderStatus.PLACED
    products = upsert_products(session, lines=order.lines)
    record, created = insert_or_lock(
        session,
        Order,
        key={"source_id": source_id, "order_number": order.order_number},
        values={
            "customer_id": buyer.customer_id,
            "contact_id": buyer.id,
            "currency": order.currency.upper(),
            **totals.as_values(),
            "status": status,
            "ordered_at": order.ordered_at or utcnow(),
            "source_updated_at": order.updated_at,
        },
    )
    touched = Touched()
    touched.add(EntityType.ORDER, record.id)
    touched.add(EntityType.CUSTOMER, record.customer_id)
    touched.add(EntityType.CONTACT, buyer.id)
    remember_references(
        session, source_id=source_id, order=record, references=list(order.references)
    )
    if not created and is_stale(record.source_updated_at, order.updated_at):
        touched.add(EntityType.ACTIVITY, _stale(session, record, order, event_id))
        return touched
    if order.updated_at is not None:
        record.source_updated_at = order.updated_at
    for product in products.values():
        touched.add(EntityType.PRODUCT, product.id)
    _replace_lines(session, record, order, products, totals)
    promote_customer(buyer.customer)
    if not created and order.status is not None and record.status != order.status:
        touched.add(EntityType.ACTIVITY, change_status(session, record, order.status, event_id))
    if created:
        activity = Activity(
            type=ActivityType.ORDER_PLACED,
            direction=Direction.INBOUND,
            occurred_at=record.ordered_at,
            summary=f"Order {order.order_number}: {total} {record.currency}",
            details={"lines": len(order.lines), "total": str(total)},
            customer_id=record.customer_id,
            contact_id=buyer.id,
            order_id=record.id,
            event_id=event_id,
        )
        session.add(activity)
        session.flush()
        touched.add(EntityType.ACTIVITY, activity.id)
        notify(session, OrderPlaced(order=OrderSummary.model_validate(record)))
    return touched


def _replace_lines(
    session: Session,
    record: Order,
    order: OrderCommand,
    products: dict[str, Product],
    totals: OrderTotals,
) -> None:
    """Make the stored lines exactly the payload's (a redelivered, amended order wins)."""
    record.lines.clear()
    session.flush()
    for number, line in enumerate(order.lines, start=1):
        record.lines.append(
            OrderLine(
                line_no=number,
                product_id=products[line.sku].id,
                description=line.name,
                quantity=line.quantity,
                unit_price=line.unit_price,
                line_total=line.unit_price * line.quantity,
            )
        )
    for column, amount in totals.as_values().items():
        setattr(record, column, amount)
    record.currency = order.currency.upper()
    session.flush()


def change_status(
    session: Session,
    record: Order,
    status: str,
    event_id: int | None,
    *,
    details: dict[str, object] | None = None,
) -> int:
    """Move ``record`` to ``status`` and say so in an activity; the activity's id."""
    activity = Activity(
        type=ActivityType.ORDER_STATUS_CHANGED,
        direction=Direction.INBOUND,
        occurred_at=utcnow(),
        summary=f"Order {record.order_number}: {record.status} -> {status}",
        details={"from": record.status, "to": status, **(details or {})},
        customer_id=record.customer_id,
        contact_id=record.contact_id,
        order_id=record.id,
        event_id=event_id,
    )
    previous, record.status = record.status, status
    session.add(activity)
    session.flush()
    notify(
        session,
        OrderStatusChanged(
            order=OrderSummary.model_validate(record), previous_status=previous, status=status
        ),
    )
    return activity.id


def _stale(session: Session, record: Order, order: OrderCommand, event_id: int | None) -> int:
    """Record that an older update of ``record`` arrived late and changed nothing."""
    return record_stale_update(
        session,
        event_id=event_id,
        summary=f"Order {record.order_number}: an update older than the stored one, ignored",
        details={
            "updated_at": iso(order.updated_at),
            "stored_updated_at": iso(record.source_updated_at),
            "status": order.status,
        },
        customer_id=record.customer_id,
        contact_id=record.contact_id,
        link="order_id",
        record_id=record.id,
    )
