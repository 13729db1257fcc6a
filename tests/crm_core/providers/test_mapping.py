"""The mapping table: every mapped topic is one the provider handles, and no document,
however odd, makes a mapping fail other than by naming what is wrong."""

from __future__ import annotations

import json
from typing import Any

import pytest

from crm_core.config import get_settings
from crm_core.errors import InvalidInput
from crm_core.ingestion.handlers import HANDLERS
from crm_core.ingestion.models import InboxEvent
from crm_core.ingestion.policy import IngestPolicy
from crm_core.providers import PROVIDERS
from crm_core.providers.mapped import Mapped
from crm_core.providers.mapping import MAPPINGS

TOPICS = [
    (provider, topic, PROVIDERS[provider].topics[topic])
    for provider, mappers in MAPPINGS.items()
    for topic in mappers
]

ODD_DOCUMENTS: list[Any] = [
    {},
    [],
    "text",
    {"line_items": "many", "data": [], "form_response": 1, "ticket": None},
    {"line_items": [1, None, {"quantity": "two"}], "data": {"object": {"lines": {"data": [7]}}}},
    {"data": {"object": {"amount_subtotal": "1", "currency": None, "line_items": {"data": "x"}}}},
    {"email": ["a"], "phone": {}, "billing": [], "default_address": "x", "refunds": 3},
]


def test_every_mapped_topic_is_one_the_provider_handles() -> None:
    for provider, topic, _ in TOPICS:
        assert topic in PROVIDERS[provider].topics, (provider, topic)


@pytest.mark.parametrize(("provider", "topic", "kind"), TOPICS)
@pytest.mark.parametrize("document", ODD_DOCUMENTS)
def test_an_odd_document_is_invalid_never_a_crash(
    provider: str, topic: str, kind: str, document: Any
) -> None:
    event = InboxEvent(
        kind=kind,
        topic=topic,
        body=json.dumps(document).encode(),
        content_type="application/json",
    )
    with pytest.raises(InvalidInput) as caught:
        HANDLERS[kind].parse_from(event, IngestPolicy.from_settings(get_settings()), provider)
    assert caught.value.errors


def test_errors_are_renamed_by_the_longest_known_prefix() -> None:
    from crm_core.errors import FieldError

    mapped = Mapped(
        {},
        {("lines",): ("line_items",), ("lines", 2, "unit_price"): ("line_items", 2, "price")},
    )
    errors = [
        FieldError(("lines", 2, "unit_price"), "bad"),
        FieldError(("lines", 1, "sku"), "bad"),
        FieldError(("body",), "bad"),
    ]
    assert [e.field for e in mapped.translate(errors)] == [
        "line_items.2.price",
        "line_items.1.sku",
        "body",
    ]
