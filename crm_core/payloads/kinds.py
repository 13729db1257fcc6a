"""What a webhook carries (``EventKind``) and who sends it (``ProviderName``)."""

from __future__ import annotations

import enum


class EventKind(enum.StrEnum):
    LEADS = "leads"
    EMAILS = "emails"
    TICKETS = "tickets"
    ORDERS = "orders"
    DEALS = "deals"


class ProviderName(enum.StrEnum):
    """Who sends a source's requests, and so how they are verified and read."""

    STANDARD = "standard"
    SHOPIFY = "shopify"
    WOOCOMMERCE = "woocommerce"
    STRIPE = "stripe"
    ZENDESK = "zendesk"
    FRESHDESK = "freshdesk"
    TYPEFORM = "typeform"
    FORM = "form"
    # Any JSON sender, described by a mapping file stored with its source.
    CUSTOM = "custom"
