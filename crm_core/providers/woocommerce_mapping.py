"""WooCommerce's order and customer webhooks in our terms (REST API v3 resources).

A line's unit price is its ``subtotal`` (before coupons, without tax) divided
by its quantity; the order's discount is ``discount_total``, its tax
``total_tax`` (cart and shipping), its shipping ``shipping_total``. Fee lines
have no place yet: an order with fees does not add up and is refused, naming
``total``. The order's time is ``date_created_gmt``.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Any

from crm_core.payloads.schemas import OrderState
from crm_core.providers.mapped import Loc, Mapped, dig, first

STATUSES = {
    "pending": OrderState.PLACED,
    "on-hold": OrderState.PLACED,
    "processing": OrderState.PAID,
    "completed": OrderState.FULFILLED,
    "cancelled": OrderState.CANCELLED,
    "refunded": OrderState.REFUNDED,
}


def order_status(order: dict[str, Any]) -> OrderState:
    """WooCommerce's status in ours; an order with some refunds is partly refunded."""
    status = STATUSES.get(str(order.get("status")), OrderState.PLACED)
    refunds = order.get("refunds")
    if status in (OrderState.PAID, OrderState.FULFILLED) and isinstance(refunds, list) and refunds:
        return OrderState.PARTIALLY_REFUNDED
    return status


def _unit_price(item: dict[str, Any]) -> Any:
    """The line's subtotal over its quantity, exactly; as given when either is not a number."""
    try:
        subtotal = Decimal(str(item.get("subtotal")))
        quantity = int(item["quantity"])
        return subtotal / quantity if quantity > 0 else subtotal
    except (InvalidOperation, KeyError, TypeError, ValueError, ArithmeticError):
        return item.get("subtotal")


def _line(item: Any) -> Any:
    if not isinstance(item, dict):
        return item
    product = first(item.get("variation_id") or None, item.get("product_id"))
    fallback = f"woocommerce-product-{product}" if product is not None else None
    return {
        "sku": first(item.get("sku"), fallback),
        "name": item.get("name"),
        "quantity": item.get("quantity"),
        "unit_price": _unit_price(item),
    }


def order(document: dict[str, Any]) -> Mapped:
    """An ``order.*`` webhook (an Order resource) as an order."""
    raw_lines = document.get("line_items")
    lines = [_line(item) for item in raw_lines] if isinstance(raw_lines, list) else raw_lines
    mapped = {
        "order_number": first(document.get("number"), document.get("id")),
        "email": dig(document, "billing", "email"),
        "currency": document.get("currency"),
        "lines": lines,
        "discount_total": first(document.get("discount_total"), "0"),
        "tax_total": first(document.get("total_tax"), "0"),
        "shipping_total": first(document.get("shipping_total"), "0"),
        "total": document.get("total"),
        "status": order_status(document),
        "ordered_at": first(document.get("date_created_gmt"), document.get("date_created")),
        "updated_at": document.get("date_modified_gmt"),
    }
    if isinstance(mapped["order_number"], int):
        mapped["order_number"] = str(mapped["order_number"])
    origins: dict[Loc, Loc] = {
        ("order_number",): ("number",),
        ("email",): ("billing", "email"),
        ("currency",): ("currency",),
        ("lines",): ("line_items",),
        ("discount_total",): ("discount_total",),
        ("tax_total",): ("total_tax",),
        ("shipping_total",): ("shipping_total",),
        ("total",): ("total",),
        ("ordered_at",): ("date_created_gmt",),
        ("updated_at",): ("date_modified_gmt",),
    }
    for index in range(len(lines) if isinstance(lines, list) else 0):
        origins[("lines", index, "unit_price")] = ("line_items", index, "subtotal")
    return Mapped({k: v for k, v in mapped.items() if v is not None}, origins)


def customer(document: dict[str, Any]) -> Mapped:
    """A ``customer.*`` webhook (a Customer resource) as a lead."""
    billing = document.get("billing")
    billing = billing if isinstance(billing, dict) else {}
    customer_id = document.get("id")
    mapped = {
        "email": first(document.get("email"), billing.get("email")),
        "phone": billing.get("phone"),
        "first_name": first(document.get("first_name"), billing.get("first_name")),
        "last_name": first(document.get("last_name"), billing.get("last_name")),
        "company": billing.get("company"),
        "country": billing.get("country"),
        "external_id": str(customer_id) if customer_id is not None else None,
    }
    origins: dict[Loc, Loc] = {
        ("email",): ("email",),
        ("phone",): ("billing", "phone"),
        ("first_name",): ("first_name",),
        ("last_name",): ("last_name",),
        ("company",): ("billing", "company"),
        ("country",): ("billing", "country"),
        ("external_id",): ("id",),
    }
    return Mapped({k: v for k, v in mapped.items() if v not in (None, "")}, origins)


MAPPERS: dict[str, Callable[[dict[str, Any]], Mapped]] = {
    "order.created": order,
    "order.updated": order,
    "customer.created": customer,
}
