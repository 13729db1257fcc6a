"""Postmark: the inbound webhook and the bounce and spam-complaint webhooks, on one URL.

Postmark signs nothing; as it recommends, the URL carries generated Basic
credentials, which every post must present. Every post is one JSON object,
and its ``RecordType`` says what it is: ``Inbound`` (or none, with a
``FromFull``) is a message, whose delivery id is Postmark's ``MessageID``;
``Bounce`` and ``SpamComplaint`` are delivery events, each with its own
``ID``; anything else (``Delivery``, ``Open``, ``Click``,
``SubscriptionChange``) is kept and ignored.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from typing import Any

from crm_core.errors import FieldError
from crm_core.payloads.kinds import EventKind, ProviderName
from crm_core.providers.base import (
    Delivery,
    Provider,
    ProviderRequest,
    body_digest_id,
    check_basic,
    url_with_credentials,
)

INBOUND = "Inbound"
BOUNCE = "Bounce"
SPAM_COMPLAINT = "SpamComplaint"


class Postmark(Provider):
    name = ProviderName.POSTMARK
    label = "Postmark"
    takes_secret = False
    topics = {
        INBOUND: EventKind.EMAILS,
        BOUNCE: EventKind.MAIL_EVENTS,
        SPAM_COMPLAINT: EventKind.MAIL_EVENTS,
    }
    home_kind = EventKind.MAIL_EVENTS
    carries_mail = True

    def verify(
        self, request: ProviderRequest, *, secrets: Iterable[str], now: float, tolerance: int
    ) -> None:
        check_basic(request, secrets)

    def classify(self, request: ProviderRequest, *, max_depth: int) -> Delivery:
        document = self.parse(request, max_depth=max_depth)
        if isinstance(document, FieldError):
            return self.delivery(
                request, webhook_id=None, topic=None, id_field="", errors=[document]
            )
        topic = record_type(document)
        if topic == INBOUND:
            webhook_id = _id(document.get("MessageID"))
            return self.delivery(request, webhook_id=webhook_id, topic=topic, id_field="MessageID")
        if topic in (BOUNCE, SPAM_COMPLAINT):
            event_id = _id(document.get("ID"))
            webhook_id = f"{topic}:{event_id}" if event_id else None
            return self.delivery(request, webhook_id=webhook_id, topic=topic, id_field="ID")
        # Not handled: kept under its record type, the same body being the same delivery.
        return self.delivery(
            request, webhook_id=body_digest_id(request.body), topic=topic, id_field=""
        )

    def new_credentials(self) -> str:
        return f"postmark-{secrets.token_hex(4)}:{secrets.token_urlsafe(24)}"

    def endpoint(self, base_url: str, source: str, secret: str | None = None) -> str:
        return url_with_credentials(super().endpoint(base_url, source), secret)

    def setup_steps(self, endpoint: str) -> list[str]:
        return [
            "Inbound mail: in Postmark, open the server's Inbound message stream > Settings,"
            " and paste the URL below as the Inbound webhook URL (it carries this source's"
            " user and password).",
            "Delivery events: the Transactional (and Broadcast) stream > Webhooks > Add"
            " webhook, the same URL, with Bounce and Spam Complaint ticked.",
            endpoint,
        ]


def record_type(document: dict[str, Any]) -> str | None:
    """What a Postmark post is: its ``RecordType``; ``Inbound`` for a message without one."""
    kind = document.get("RecordType")
    if isinstance(kind, str):
        return kind
    return INBOUND if isinstance(document.get("FromFull"), dict) else None


def _id(value: Any) -> str | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value)
    return value if isinstance(value, str) and value else None
