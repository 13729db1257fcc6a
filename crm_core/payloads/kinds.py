"""What a webhook carries (``EventKind``) and who sends it (``ProviderName``)."""

from __future__ import annotations

import enum


class EventKind(enum.StrEnum):
    LEADS = "leads"
    EMAILS = "emails"
    TICKETS = "tickets"
    ORDERS = "orders"
    DEALS = "deals"
    # What an e-mail provider reports about mail we sent through it (bounces, complaints,
    # unsubscribes): only a provider's own documents carry it.
    MAIL_EVENTS = "mail_events"


# Kinds with no payload of our own: no ``/webhooks/<source>/<kind>`` and no custom mapping.
PROVIDER_ONLY_KINDS = frozenset({EventKind.MAIL_EVENTS})


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
    # E-mail providers: inbound mail and delivery events on one URL.
    MAILGUN = "mailgun"
    SENDGRID = "sendgrid"
    POSTMARK = "postmark"
    # Any JSON sender, described by a mapping file stored with its source.
    CUSTOM = "custom"
