"""Shopify's order and customer webhooks in our terms (REST Admin API resources).

An order's subtotal is ``total_line_items_price`` (the lines before discounts),
then ``total_discounts``, ``total_tax``, the shipping of
``total_shipping_price_set`` and ``total_price``, all in the shop's currency.
Its status comes from ``cancelled_at``, ``financial_status`` and
``fulfillment_status``. A line without a SKU is keyed by its variant
(``shopify-variant-<id>``), or its product when it has no variant. A customer
becomes a lead (a contact, matched by e-mail or phone) keyed by Shopify's id.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from crm_core.payloads.schemas import OrderState
from crm_core.providers.mapped import Loc, Mapped, dig, first

REFUNDS = {
    "refunded": OrderState.REFUNDED,
    "partially_refunded": OrderState.PARTIALLY_REFUNDED,
}


def order_status(order: dict[str, Any]) -> OrderState:
    """Cancelled, refunded, fulfilled, paid or placed, the first that holds."""
    if order.get("cancelled_at"):
        return OrderState.CANCELLED
    financial = order.get("financial_status")
    if financial in REFUNDS:
        return REFUNDS[financial]
    if order.get("fulfillment_status") == "fulfilled":
        return OrderState.FULFILLED
    if financial == "paid":
        return OrderState.PAID
    return OrderState.PLACED


def _line(item: Any) -> Any:
    if not isinstance(item, dict):
        return item
    variant = first(item.get("variant_id"), item.get("product_id"))
    fallback = f"shopify-variant-{variant}" if variant is not None else None
    return {
        "sku": first(item.get("sku"), fallback),
        "name": first(item.get("name"), item.get("title")),
        "quantity": item.get("quantity"),
        "unit_price": item.get("price"),
    }


def order(document: dict[str, Any]) -> Mapped:
    """An ``orders/*`` webhook (an Order resource) as an order."""
    raw_lines = document.get("line_items")
    lines = [_line(item) for item in raw_lines] if isinstance(raw_lines, list) else raw_lines
    shipping = dig(document, "total_shipping_price_set", "shop_money", "amount")
    mapped = {
        "order_number": first(document.get("name"), document.get("order_number")),
        "email": first(
            document.get("email"), document.get("contact_email"), dig(document, "customer", "email")
        ),
        "currency": document.get("currency"),
        "lines": lines,
        "subtotal": document.get("total_line_items_price"),
        "discount_total": first(document.get("total_discounts"), "0"),
        "tax_total": first(document.get("total_tax"), "0"),
        "shipping_total": first(shipping, "0"),
        "total": document.get("total_price"),
        "status": order_status(document),
        "ordered_at": first(document.get("processed_at"), document.get("created_at")),
        "updated_at": document.get("updated_at"),
    }
    origins: dict[Loc, Loc] = {
        ("order_number",): ("name",),
        ("email",): ("email",),
        ("currency",): ("currency",),
        ("lines",): ("line_items",),
        ("subtotal",): ("total_line_items_price",),
        ("discount_total",): ("total_discounts",),
        ("tax_total",): ("total_tax",),
        ("shipping_total",): ("total_shipping_price_set", "shop_money", "amount"),
        ("total",): ("total_price",),
        ("ordered_at",): ("processed_at",),
        ("updated_at",): ("updated_at",),
    }
    for index in range(len(lines) if isinstance(lines, list) else 0):
        origins[("lines", index, "unit_price")] = ("line_items", index, "price")
    return Mapped({k: v for k, v in mapped.items() if v is not None}, origins)


# Shopify's ``email_marketing_consent.state`` as a consent status. ``not_subscribed`` (never
# asked), ``pending`` (a confirmed opt-in not yet confirmed) and ``invalid`` (the address
# bounces) say nothing of the person's wishes; ``redacted`` is an erased customer.
CONSENT_STATES = {
    "subscribed": "granted",
    "unsubscribed": "denied",
    "redacted": "denied",
    "not_subscribed": "unknown",
    "pending": "unknown",
    "invalid": "unknown",
}


def email_consent(document: dict[str, Any]) -> Any:
    """``email_marketing_consent`` as a lead's ``consent``; an unknown state is left for the
    lead's check to name (``email_marketing_consent.state``)."""
    consent = document.get("email_marketing_consent")
    if not isinstance(consent, dict) or consent.get("state") is None:
        return None
    state = consent.get("state")
    return {
        "status": CONSENT_STATES.get(state, state) if isinstance(state, str) else state,
        "at": consent.get("consent_updated_at"),
        "method": consent.get("opt_in_level"),
    }


def customer(document: dict[str, Any]) -> Mapped:
    """A ``customers/*`` webhook (a Customer resource) as a lead; its e-mail marketing consent
    becomes the contact's consent, its SMS consent is kept in the contact's attributes."""
    address = document.get("default_address")
    address = address if isinstance(address, dict) else {}
    consents = {
        name: document[name]
        for name in ("sms_marketing_consent",)
        if isinstance(document.get(name), dict)
    }
    customer_id = document.get("id")
    mapped = {
        "email": document.get("email"),
        "phone": first(document.get("phone"), address.get("phone")),
        "first_name": first(document.get("first_name"), address.get("first_name")),
        "last_name": first(document.get("last_name"), address.get("last_name")),
        "company": address.get("company"),
        "country": first(address.get("country_code"), address.get("country")),
        "external_id": str(customer_id) if customer_id is not None else None,
        "attributes": consents or None,
        "consent": email_consent(document),
    }
    origins: dict[Loc, Loc] = {
        ("email",): ("email",),
        ("phone",): ("phone",),
        ("first_name",): ("first_name",),
        ("last_name",): ("last_name",),
        ("company",): ("default_address", "company"),
        ("country",): ("default_address", "country_code"),
        ("external_id",): ("id",),
        ("attributes",): (),
        ("consent", "status"): ("email_marketing_consent", "state"),
        ("consent", "at"): ("email_marketing_consent", "consent_updated_at"),
        ("consent", "method"): ("email_marketing_consent", "opt_in_level"),
    }
    return Mapped({k: v for k, v in mapped.items() if v is not None}, origins)


ORDER_TOPICS = (
    "orders/create",
    "orders/updated",
    "orders/paid",
    "orders/cancelled",
    "orders/fulfilled",
)

MAPPERS: dict[str, Callable[[dict[str, Any]], Mapped]] = {
    **{topic: order for topic in ORDER_TOPICS},
    "customers/create": customer,
    "customers/update": customer,
}
