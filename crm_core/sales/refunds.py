"""Refunds: money given back on an order makes it ``refunded`` or ``partially_refunded``.

A refund names its order by number or by one of the ids the order was sent with
(``OrderCommand.references``: a shop's order id, a payment's, an invoice's). The
order keeps what has been refunded so far (``refunded_total``): a refund that
states its own amount adds it once (keyed by the refund's id), one that states
the running total raises it to that total, never lowers it. The order is
``refunded`` when that reaches its total or the sender says so, else partly
refunded; a refunded order never goes back to partly refunded. A refund that
arrives before its order is retried until the order is there.
"""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from crm_core.activities.stale import latest
from crm_core.base.entities import EntityType, ExternalRef
from crm_core.base.touched import Touched
from crm_core.db import dialect_insert, utcnow
from crm_core.errors import FieldError, InvalidInput, TransientError
from crm_core.sales.commands import RefundCommand
from crm_core.sales.models import Order, OrderStatus
from crm_core.sales.services import change_status


def find_order(
    session: Session, *, source_id: int, number: str | None, references: list[str]
) -> Order | None:
    """The source's order of ``number``, or else of the first of ``references`` it knows."""
    if number:
        found = session.scalar(
            select(Order.id).where(Order.source_id == source_id, Order.order_number == number)
        )
        if found is not None:
            return session.get(Order, found, with_for_update=True)
    for reference in references:
        found = session.scalar(
            select(ExternalRef.entity_id).where(
                ExternalRef.source_id == source_id,
                ExternalRef.entity_type == EntityType.ORDER,
                ExternalRef.external_id == reference,
            )
        )
        if found is not None:
            return session.get(Order, found, with_for_update=True)
    return None


def record_refund(
    session: Session, *, source_id: int, event_id: int | None, refund: RefundCommand
) -> Touched:
    """Count ``refund`` on its order and move the order's status; a change is an Activity."""
    order = find_order(
        session,
        source_id=source_id,
        number=refund.order_number,
        references=list(refund.order_references),
    )
    if order is None:
        named = refund.order_number or ", ".join(refund.order_references)
        raise TransientError(f"the refunded order ({named}) has not arrived yet")
    if refund.currency and refund.currency.upper() != order.currency:
        message = f"the refund is in {refund.currency.upper()}, the order in {order.currency}"
        raise InvalidInput([FieldError(("currency",), message)])
    touched = Touched()
    touched.add(EntityType.ORDER, order.id)
    touched.add(EntityType.CUSTOMER, order.customer_id)
    if order.contact_id is not None:
        touched.add(EntityType.CONTACT, order.contact_id)
    if not _first_time(session, source_id=source_id, event_id=event_id, order=order, refund=refund):
        return touched
    refunded = _refunded_total(order, refund)
    order.refunded_total = refunded
    order.source_updated_at = latest(order.source_updated_at, refund.refunded_at)
    if not refunded and not refund.full:  # no money back (a restock, say): no refund yet
        return touched
    full = refund.full if refund.full is not None else refunded >= order.total
    status = OrderStatus.REFUNDED if full else OrderStatus.PARTIALLY_REFUNDED
    if order.status == OrderStatus.REFUNDED or order.status == status:
        return touched
    activity_id = change_status(
        session,
        order,
        status,
        event_id,
        details={"refund_id": refund.refund_id, "refunded_total": str(refunded)},
    )
    touched.add(EntityType.ACTIVITY, activity_id)
    return touched


def _refunded_total(order: Order, refund: RefundCommand) -> Decimal:
    so_far = Decimal(order.refunded_total or 0)
    if refund.refunded_total is not None:
        return max(so_far, refund.refunded_total)
    if refund.amount is not None:
        return so_far + refund.amount
    return Decimal(order.total) if refund.full else so_far


def _first_time(
    session: Session, *, source_id: int, event_id: int | None, order: Order, refund: RefundCommand
) -> bool:
    """Whether ``refund`` is counted for the first time: a refund of an amount once per refund
    id (or per event, without one); a running total counts the same however often it comes."""
    if refund.amount is None or refund.refunded_total is not None:
        return True
    if refund.refund_id:
        key = f"refund:{refund.refund_id}"
    elif event_id is not None:
        key = f"refund-event:{event_id}"
    else:
        return True
    inserted = session.execute(
        dialect_insert(session, ExternalRef)
        .values(
            source_id=source_id,
            entity_type=EntityType.ORDER,
            external_id=key[:255],
            entity_id=order.id,
            created_at=utcnow(),
        )
        .on_conflict_do_nothing(index_elements=["source_id", "entity_type", "external_id"])
        .returning(ExternalRef.id)
    ).scalar()
    return inserted is not None
