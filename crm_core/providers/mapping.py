"""The worker's side of the providers: a provider's document restated in our terms.

``MAPPINGS`` is the one table, provider -> topic -> mapper; ``CONFIGURED`` holds
the providers whose mappers a source's stored mapping shapes (``custom``: its
mapping file; Typeform: answer refs), each a function of that mapping returning
a function of the topic. A mapper reads the
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
from crm_core.payloads.json_body import parse_json_body
from crm_core.payloads.kinds import ProviderName
from crm_core.providers import (
    custom_mapping,
    form_mapping,
    freshdesk_mapping,
    shopify_mapping,
    stripe_mapping,
    typeform_mapping,
    woocommerce_mapping,
)
from crm_core.providers.form_body import read_form
from crm_core.providers.mapped import Mapped

Mapper = Callable[[dict[str, Any]], Mapped]

MAPPINGS: dict[str, dict[str, Mapper]] = {
    ProviderName.SHOPIFY.value: shopify_mapping.MAPPERS,
    ProviderName.WOOCOMMERCE.value: woocommerce_mapping.MAPPERS,
    ProviderName.STRIPE.value: stripe_mapping.MAPPERS,
    ProviderName.FRESHDESK.value: freshdesk_mapping.MAPPERS,
    ProviderName.TYPEFORM.value: typeform_mapping.MAPPERS,
    ProviderName.FORM.value: form_mapping.MAPPERS,
}


def read_document(
    provider: str, body: bytes, content_type: str, *, max_depth: int
) -> dict[str, Any] | FieldError:
    """A stored provider body as the document its mapper reads: a web form's fields, or the
    JSON object every other provider sends; else what prevents reading it."""
    if provider == ProviderName.FORM:
        return read_form(body, content_type)
    try:
        document = parse_json_body(body, max_depth=max_depth)
    except ValueError as exc:
        return FieldError(("body",), str(exc), "json_invalid")
    if not isinstance(document, dict):
        return FieldError(("body",), "the body must be a JSON object", "model_type")
    return document


# A source's stored mapping -> its mapper of a topic (``None``: the topic has none).
MapperFor = Callable[[str | None], Mapper | None]
CONFIGURED: dict[str, Callable[[dict[str, Any] | None], MapperFor]] = {
    ProviderName.CUSTOM.value: custom_mapping.mapper_for,
    ProviderName.TYPEFORM.value: typeform_mapping.mapper_for,
}


def map_document(
    provider: str,
    topic: str | None,
    body: bytes,
    *,
    max_depth: int,
    content_type: str = "",
    mapping: dict[str, Any] | None = None,
) -> Mapped:
    """The standard document of a stored provider event, read as its source's ``mapping``
    says; ``InvalidInput`` when it has none."""
    configured = CONFIGURED.get(provider)
    if configured is not None:
        mapper = configured(mapping)(topic)
    else:
        mapper = MAPPINGS.get(provider, {}).get(topic or "")
    if mapper is None:
        message = f"no mapping of {provider} topic {topic!r}; replay it once there is one"
        raise InvalidInput([FieldError(("topic",), message, "unmapped_topic")])
    document = read_document(provider, body, content_type, max_depth=max_depth)
    if isinstance(document, FieldError):
        raise InvalidInput([document])
    return mapper(document)
