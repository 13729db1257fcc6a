"""Providers: how each sender's requests are verified, deduplicated and classified.

One module per provider, each one ``Provider`` object; ``PROVIDERS`` is the
table from a source's ``provider`` column to that object.
"""

from __future__ import annotations

from typing import Any

from crm_core.payloads.kinds import ProviderName
from crm_core.providers.base import Delivery, Provider, ProviderRequest, SignatureError
from crm_core.providers.custom import Custom
from crm_core.providers.form import Form
from crm_core.providers.freshdesk import Freshdesk
from crm_core.providers.mailgun import Mailgun
from crm_core.providers.postmark import Postmark
from crm_core.providers.sendgrid import SendGrid
from crm_core.providers.shopify import Shopify
from crm_core.providers.standard import Standard
from crm_core.providers.stripe import Stripe
from crm_core.providers.typeform import Typeform
from crm_core.providers.woocommerce import WooCommerce
from crm_core.providers.zendesk import Zendesk

__all__ = [
    "PROVIDERS",
    "Delivery",
    "Provider",
    "ProviderRequest",
    "SignatureError",
    "get_provider",
]

PROVIDERS: dict[str, Provider] = {
    provider.name.value: provider
    for provider in (
        Standard(),
        Shopify(),
        WooCommerce(),
        Stripe(),
        Zendesk(),
        Freshdesk(),
        Typeform(),
        Form(),
        Custom(),
        Mailgun(),
        SendGrid(),
        Postmark(),
    )
}
assert set(PROVIDERS) == {name.value for name in ProviderName}


def get_provider(
    name: str, mapping: dict[str, Any] | None = None, public_key: str | None = None
) -> Provider:
    """The provider called ``name``, reading a source whose stored mapping is ``mapping`` and
    verifying with its stored ``public_key``; ``KeyError`` for a name the table does not have."""
    return PROVIDERS[name].configured(mapping).keyed(public_key)
