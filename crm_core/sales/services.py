"""Orders and deals: products upserted by SKU, orders by number, deals by external id."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from crm_core.activities.models import Activity, ActivityType, Direction
from crm_core.customers.models import Contact, Customer, LifecycleStage
from crm_core.db import dialect_insert, insert_or_lock, utcnow
from crm_core.errors import FieldError, InvalidInput
from crm_core.ingestion.models import EntityType
from crm_core.ingestion.schemas import OrderLinePayload, OrderPayload
from crm_core.sales.models import Order, OrderLine, Product
from crm_core.touched import Touched


def order_total(lines: list[OrderLinePayload]) -> Decimal:
    """The sum of quantity times unit price, exactly (``Decimal``)."""
    return sum((line.unit_price * line.quantity for line in lines), Decimal("0"))


def check_order_total(order: OrderPayload) -> Decimal:
    """The computed total; a stated ``total`` that differs makes the order invalid."""
    computed = order_total(list(order.lines))
    if order.total is not None and order.total != computed:
        message = f"total {order.total} does not match the lines' sum {computed}"
        raise InvalidInput([FieldError(("total",), message)])
    return computed


def upsert_products(session: Session, *, lines: list[OrderLinePayload]) -> dict[str, Product]:
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


def record_order(
    session: Session, *, source_id: int, event_id: int | None, buyer: Contact, order: OrderPayload
) -> Touched:
    """Upsert the order ``(source, order number)`` with its lines for ``buyer``."""
    total = check_order_total(order)
    products = upsert_products(session, lines=list(order.lines))
    record, created = insert_or_lock(
        session,
        Order,
        key={"source_id": source_id, "order_number": order.order_number},
        values={
            "customer_id": buyer.customer_id,
            "contact_id": buyer.id,
            "currency": order.currency.upper(),
            "total": total,
            "status": "placed",
            "ordered_at": order.ordered_at or utcnow(),
        },
    )
    touched = Touched()
    touched.add(EntityType.ORDER, record.id)
    touched.add(EntityType.CUSTOMER, record.customer_id)
    touched.add(EntityType.CONTACT, buyer.id)
    for product in products.values():
        touched.add(EntityType.PRODUCT, product.id)
    _replace_lines(session, record, order, products, total)
    promote_customer(buyer.customer)
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
    return touched


def _replace_lines(
    session: Session,
    record: Order,
    order: OrderPayload,
    products: dict[str, Product],
    total: Decimal,
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
    record.total = total
    record.currency = order.currency.upper()
    session.flush()
