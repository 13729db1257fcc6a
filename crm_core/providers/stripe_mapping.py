"""Stripe's checkout, invoice and customer events in our terms (the ``data.object``).

Stripe states amounts as integers in the currency's minor unit; they become
``Decimal`` by the currency's exponent (``ZERO_DECIMAL`` and ``THREE_DECIMAL``
are Stripe's lists, every other currency has two decimals). A Checkout Session
event does not carry its line items: unless they were expanded into it, the
order has one line, ``stripe-checkout``, of the session's subtotal. An
invoice's lines are its line items, keyed by their price (or product).
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

from crm_core.payloads.schemas import OrderState
from crm_core.providers.mapped import Loc, Mapped, dig, first, items

# https://docs.stripe.com/currencies#zero-decimal and #three-decimal
ZERO_DECIMAL = frozenset(
    [
        "BIF",
        "CLP",
        "DJF",
        "GNF",
        "JPY",
        "KMF",
        "KRW",
        "MGA",
        "PYG",
        "RWF",
        "UGX",
        "VND",
        "VUV",
        "XAF",
        "XOF",
        "XPF",
    ]
)
THREE_DECIMAL = frozenset(["BHD", "JOD", "KWD", "OMR", "TND"])
OBJECT: Loc = ("data", "object")


def exponent(currency: Any) -> int:
    """How many decimals the currency's minor unit has."""
    code = str(currency or "").upper()
    if code in ZERO_DECIMAL:
        return 0
    return 3 if code in THREE_DECIMAL else 2


def money(amount: Any, currency: Any) -> Any:
    """``amount`` in minor units as a ``Decimal``; anything but an integer as given, for the
    check to refuse by name."""
    if not isinstance(amount, int) or isinstance(amount, bool):
        return amount
    value = Decimal(amount).scaleb(-exponent(currency))
    # 12340 fils is 12.34 dinar: a trailing zero is not a third decimal place.
    return value.quantize(Decimal("0.01")) if value == value.quantize(Decimal("0.01")) else value


def _sum(values: list[Any], currency: Any) -> Any:
    amounts = [value for value in values if isinstance(value, int)]
    return money(sum(amounts), currency)


def _checkout_lines(session: dict[str, Any], currency: Any) -> tuple[list[Any], str]:
    """The expanded line items, or one line of the subtotal; the path prices came from."""
    expanded = items(dig(session, "line_items", "data"))
    if expanded:
        lines = [_item_line(item, currency, "amount_subtotal") for item in expanded]
        return lines, "line_items.data"
    line = {
        "sku": "stripe-checkout",
        "name": "Stripe Checkout",
        "quantity": 1,
        "unit_price": money(session.get("amount_subtotal"), currency),
    }
    return [line], ""


def _item_line(item: Any, currency: Any, amount_key: str) -> Any:
    if not isinstance(item, dict):
        return item
    price = item.get("price")
    price = price if isinstance(price, dict) else {}
    quantity = item.get("quantity") or 1
    amount = item.get(amount_key)
    unit = amount
    if isinstance(amount, int) and isinstance(quantity, int) and quantity > 0:
        # Not a whole minor unit each: more decimals than money has, and refused by name.
        unit = money(amount, currency) / quantity
    return {
        "sku": first(price.get("id"), price.get("product"), item.get("id")),
        "name": first(item.get("description"), price.get("nickname")),
        "quantity": quantity,
        "unit_price": unit,
    }


def checkout_session(document: dict[str, Any]) -> Mapped:
    """``checkout.session.completed`` as an order, paid when its payment is."""
    session = dig(document, *OBJECT)
    session = session if isinstance(session, dict) else {}
    currency = session.get("currency")
    lines, lines_path = _checkout_lines(session, currency)
    totals = session.get("total_details")
    totals = totals if isinstance(totals, dict) else {}
    paid = session.get("payment_status") in ("paid", "no_payment_required")
    mapped = {
        "order_number": session.get("id"),
        "email": first(dig(session, "customer_details", "email"), session.get("customer_email")),
        "currency": currency,
        "lines": lines,
        "subtotal": money(session.get("amount_subtotal"), currency),
        "discount_total": money(totals.get("amount_discount", 0), currency),
        "tax_total": money(totals.get("amount_tax", 0), currency),
        "shipping_total": money(totals.get("amount_shipping", 0), currency),
        "total": money(session.get("amount_total"), currency),
        "status": OrderState.PAID if paid else OrderState.PLACED,
        "ordered_at": first(session.get("created"), document.get("created")),
    }
    origins: dict[Loc, Loc] = {
        ("order_number",): (*OBJECT, "id"),
        ("email",): (*OBJECT, "customer_details", "email"),
        ("currency",): (*OBJECT, "currency"),
        ("subtotal",): (*OBJECT, "amount_subtotal"),
        ("discount_total",): (*OBJECT, "total_details", "amount_discount"),
        ("tax_total",): (*OBJECT, "total_details", "amount_tax"),
        ("shipping_total",): (*OBJECT, "total_details", "amount_shipping"),
        ("total",): (*OBJECT, "amount_total"),
        ("ordered_at",): (*OBJECT, "created"),
    }
    if lines_path:
        origins[("lines",)] = (*OBJECT, *lines_path.split("."))
        for index in range(len(lines)):
            origins[("lines", index, "unit_price")] = (
                *OBJECT,
                "line_items",
                "data",
                index,
                "amount_subtotal",
            )
    else:
        origins[("lines",)] = (*OBJECT, "amount_subtotal")
    return Mapped({k: v for k, v in mapped.items() if v is not None}, origins)


def invoice(document: dict[str, Any]) -> Mapped:
    """``invoice.paid`` as a paid order: its lines, discounts and taxes."""
    bill = dig(document, *OBJECT)
    bill = bill if isinstance(bill, dict) else {}
    currency = bill.get("currency")
    raw_lines = dig(bill, "lines", "data")
    lines = (
        [_item_line(item, currency, "amount") for item in raw_lines]
        if isinstance(raw_lines, list)
        else raw_lines
    )
    discounts = [dig(d, "amount") for d in items(bill.get("total_discount_amounts"))]
    if isinstance(bill.get("tax"), int):
        tax = money(bill["tax"], currency)
    else:
        taxes = items(bill.get("total_taxes")) or items(bill.get("total_tax_amounts"))
        tax = _sum([dig(t, "amount") for t in taxes], currency)
    mapped = {
        "order_number": first(bill.get("number"), bill.get("id")),
        "email": bill.get("customer_email"),
        "currency": currency,
        "lines": lines,
        "subtotal": money(bill.get("subtotal"), currency),
        "discount_total": _sum(discounts, currency),
        "tax_total": tax,
        "total": money(bill.get("total"), currency),
        "status": OrderState.PAID,
        "ordered_at": first(bill.get("created"), document.get("created")),
    }
    origins: dict[Loc, Loc] = {
        ("order_number",): (*OBJECT, "number"),
        ("email",): (*OBJECT, "customer_email"),
        ("currency",): (*OBJECT, "currency"),
        ("lines",): (*OBJECT, "lines", "data"),
        ("subtotal",): (*OBJECT, "subtotal"),
        ("discount_total",): (*OBJECT, "total_discount_amounts"),
        ("tax_total",): (*OBJECT, "tax"),
        ("total",): (*OBJECT, "total"),
        ("ordered_at",): (*OBJECT, "created"),
    }
    for index in range(len(lines) if isinstance(lines, list) else 0):
        origins[("lines", index, "unit_price")] = (*OBJECT, "lines", "data", index, "amount")
    return Mapped({k: v for k, v in mapped.items() if v is not None}, origins)


def customer(document: dict[str, Any]) -> Mapped:
    """``customer.created`` / ``customer.updated`` as a lead keyed by Stripe's customer id."""
    person = dig(document, *OBJECT)
    person = person if isinstance(person, dict) else {}
    mapped = {
        "email": person.get("email"),
        "phone": person.get("phone"),
        "full_name": person.get("name"),
        "country": dig(person, "address", "country"),
        "external_id": person.get("id"),
    }
    origins: dict[Loc, Loc] = {
        ("email",): (*OBJECT, "email"),
        ("phone",): (*OBJECT, "phone"),
        ("full_name",): (*OBJECT, "name"),
        ("country",): (*OBJECT, "address", "country"),
        ("external_id",): (*OBJECT, "id"),
    }
    return Mapped({k: v for k, v in mapped.items() if v not in (None, "")}, origins)


MAPPERS: dict[str, Callable[[dict[str, Any]], Mapped]] = {
    "checkout.session.completed": checkout_session,
    "invoice.paid": invoice,
    "customer.created": customer,
    "customer.updated": customer,
}
