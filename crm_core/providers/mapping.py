"""The worker's side of the providers: a provider's document restated in our terms.

``MAPPINGS`` is the one table, provider -> topic -> mapper. A mapper reads the
provider's JSON document and returns a ``Mapped``: the document the kind's
standard payload would be (``orders``: an ``OrderPayload``'s fields, ...) and,
for each of its parts, where in the provider's document it came from. The kind's
handler then checks that document exactly as it checks a standard one, and any
error is named in the provider's own terms (``line_items.2.price``), so an
operator can see what the sender said wrong and replay the event after a fix.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from crm_core.errors import FieldError, InvalidInput
from crm_core.ingestion.models import ProviderName
from crm_core.ingestion.validation import parse_json_body
from crm_core.providers import (
    freshdesk_mapping,
    shopify_mapping,
    stripe_mapping,
    typeform_mapping,
    woocommerce_mapping,
    zendesk_mapping,
)
from crm_core.providers.mapped import Mapped

Mapper = Callable[[dict[str, Any]], Mapped]

MAPPINGS: dict[str, dict[str, Mapper]] = {
    ProviderName.SHOPIFY.value: shopify_mapping.MAPPERS,
    ProviderName.WOOCOMMERCE.value: woocommerce_mapping.MAPPERS,
    ProviderName.STRIPE.value: stripe_mapping.MAPPERS,
    ProviderName.ZENDESK.value: zendesk_mapping.MAPPERS,
    ProviderName.FRESHDESK.value: freshdesk_mapping.MAPPERS,
    ProviderName.TYPEFORM.value: typeform_mapping.MAPPERS,
}


def map_document(provider: str, topic: str | None, body: bytes, *, max_depth: int) -> Mapped:
    """The standard document of a stored provider event; ``InvalidInput`` when it has none."""
    mapper = MAPPINGS.get(provider, {}).get(topic or "")
    if mapper is None:
        message = f"no mapping of {provider} topic {topic!r}; replay it once there is one"
        raise InvalidInput([FieldError(("topic",), message, "unmapped_topic")])
    try:
        document = parse_json_body(body, max_depth=max_depth)
    except ValueError as exc:
        raise InvalidInput([FieldError(("body",), str(exc), "json_invalid")]) from None
    if not isinstance(document, dict):
        raise InvalidInput([FieldError(("body",), "the body must be a JSON object", "model_type")])
    return mapper(document)
