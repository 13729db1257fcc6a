"""SendGrid: Inbound Parse posts and Event Webhook batches, on one URL.

Inbound Parse posts each message as ``multipart/form-data`` (parsed fields, or
the raw message in ``email`` when "POST the raw, full MIME message" is ticked)
and signs nothing: as SendGrid recommends, the URL carries generated Basic
credentials, which every post must present.

The Event Webhook posts a JSON array of events, signed with ECDSA (P-256,
SHA-256): ``X-Twilio-Email-Event-Webhook-Signature`` is the base64 signature of
``X-Twilio-Email-Event-Webhook-Timestamp`` followed by the raw body, verified
with the public key SendGrid shows when signing is enabled ("Verification
key", base64 DER), which the source is given (``crm sources set-key``). A
batch without a key to check it with is refused: events that suppress
addresses are never taken unverified. The timestamp must be within the
tolerance of now.

One post carries many events. It is stored once, its delivery id the
``sg_event_id`` of its one event, or a digest of the sorted ids of all of them
(so the same events posted again are one delivery); each event's own
``sg_event_id`` is the id of the report it becomes, applied once however often
it arrives.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import secrets
from collections.abc import Iterable
from typing import Any

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from crm_core.errors import FieldError, InvalidInput
from crm_core.payloads.json_body import JSON_TYPE, parse_json_body
from crm_core.payloads.kinds import EventKind, ProviderName
from crm_core.providers.base import (
    MAX_ID,
    Delivery,
    Provider,
    ProviderRequest,
    SignatureError,
    body_digest_id,
    check_age,
    check_basic,
    decode_base64,
    url_with_credentials,
)
from crm_core.providers.mail_form import MULTIPART

SIGNATURE = "X-Twilio-Email-Event-Webhook-Signature"
TIMESTAMP = "X-Twilio-Email-Event-Webhook-Timestamp"
INBOUND = "inbound"
HANDLED_EVENTS = frozenset(
    {"bounce", "blocked", "dropped", "spamreport", "unsubscribe", "group_unsubscribe"}
)
# The topic of a batch with at least one event the platform acts on; ``other`` has none.
DELIVERY_EVENTS = "delivery_events"
OTHER_EVENTS = "other_events"
MAX_KEY = 4096


class SendGrid(Provider):
    name = ProviderName.SENDGRID
    label = "SendGrid"
    takes_secret = False
    takes_public_key = True
    topics = {INBOUND: EventKind.EMAILS, DELIVERY_EVENTS: EventKind.MAIL_EVENTS}
    home_kind = EventKind.MAIL_EVENTS
    media_types = (JSON_TYPE, MULTIPART)
    carries_mail = True

    def __init__(self, public_key: ec.EllipticCurvePublicKey | None = None) -> None:
        self.public_key = public_key

    def keyed(self, public_key: str | None) -> SendGrid:
        return SendGrid(load_public_key(public_key) if public_key else None)

    def checked_public_key(self, public_key: str) -> str:
        key = _bare_key(public_key)
        try:
            load_public_key(key)
        except ValueError as exc:
            raise InvalidInput([FieldError(("public_key",), str(exc))]) from None
        return key

    def verify(
        self, request: ProviderRequest, *, secrets: Iterable[str], now: float, tolerance: int
    ) -> None:
        if request.media_type != JSON_TYPE:
            check_basic(request, secrets)
            return
        if self.public_key is None:
            raise SignatureError(
                "this source has no SendGrid verification key to check event batches with;"
                " give it one: crm sources set-key <source> <key>"
            )
        signature = decode_base64(request.header(SIGNATURE), header=SIGNATURE)
        timestamp = request.header(TIMESTAMP)
        if (
            not timestamp
            or not timestamp.isascii()
            or not timestamp.isdigit()
            or len(timestamp) > 12
        ):
            raise SignatureError(f"{TIMESTAMP} must be Unix seconds")
        check_age(int(timestamp), now=now, tolerance=tolerance, header=TIMESTAMP)
        try:
            self.public_key.verify(
                signature, timestamp.encode("ascii") + request.body, ec.ECDSA(hashes.SHA256())
            )
        except InvalidSignature:
            raise SignatureError(f"{SIGNATURE} does not match the timestamp and body") from None

    def classify(self, request: ProviderRequest, *, max_depth: int) -> Delivery:
        if request.media_type != JSON_TYPE:
            # SendGrid sends no id: the same post again is the same delivery.
            return self.delivery(
                request, webhook_id=body_digest_id(request.body), topic=INBOUND, id_field=""
            )
        try:
            document = parse_json_body(request.body, max_depth=max_depth)
        except ValueError as exc:
            error = FieldError(("body",), str(exc), "json_invalid")
            return self.delivery(request, webhook_id=None, topic=None, id_field="", errors=[error])
        if not isinstance(document, list) or not document:
            error = FieldError(("body",), "an event batch is a non-empty JSON array", "model_type")
            return self.delivery(request, webhook_id=None, topic=None, id_field="", errors=[error])
        return self._batch(request, document)

    def _batch(self, request: ProviderRequest, events: list[Any]) -> Delivery:
        ids: list[str] = []
        names: set[str] = set()
        for index, event in enumerate(events):
            event_id = event.get("sg_event_id") if isinstance(event, dict) else None
            if not isinstance(event_id, str) or not event_id or len(event_id) > MAX_ID:
                error = FieldError((index, "sg_event_id"), "every event has an id", "missing")
                return self.delivery(
                    request, webhook_id=None, topic=None, id_field="", errors=[error]
                )
            ids.append(event_id)
            name = event.get("event")
            names.add(name if isinstance(name, str) else "")
        topic = DELIVERY_EVENTS if names & HANDLED_EVENTS else OTHER_EVENTS
        return self.delivery(request, webhook_id=batch_id(ids), topic=topic, id_field="")

    def new_credentials(self) -> str:
        return f"sendgrid-{secrets.token_hex(4)}:{secrets.token_urlsafe(24)}"

    def endpoint(self, base_url: str, source: str, secret: str | None = None) -> str:
        return url_with_credentials(super().endpoint(base_url, source), secret)

    def setup_steps(self, endpoint: str) -> list[str]:
        return [
            "Inbound mail: SendGrid Settings > Inbound Parse > Add Host & URL, with your"
            " receiving domain and the URL below (it carries this source's user and password)."
            ' Tick "POST the raw, full MIME message" to have the message posted whole.',
            "Delivery events: Settings > Mail Settings > Event Webhook, the same URL as Post"
            " URL, with the events Bounced, Dropped, Spam Reports, Unsubscribes and Group"
            " Unsubscribes (blocked mail comes with Bounced).",
            "Enable Signed Event Webhook Requests there, and give this source the"
            " Verification Key shown: crm sources set-key <source> <key>.",
            endpoint,
        ]


def batch_id(ids: list[str]) -> str:
    """The delivery id of a batch: its one event's id, or a digest of all of them."""
    if len(ids) == 1:
        return ids[0]
    digest = hashlib.sha256(json.dumps(sorted(set(ids))).encode("utf-8")).hexdigest()
    return f"sg_event_ids:{digest}"


def _bare_key(value: str) -> str:
    """The base64 of a key given bare (as SendGrid shows it) or as PEM."""
    lines = [line.strip() for line in value.strip().splitlines()]
    return "".join(line for line in lines if line and not line.startswith("-----"))


def load_public_key(value: str) -> ec.EllipticCurvePublicKey:
    """The EC public key of SendGrid's base64 DER verification key; ``ValueError`` when it
    is not one."""
    key = _bare_key(value)
    if len(key) > MAX_KEY:
        raise ValueError("the verification key is too long")
    try:
        loaded = serialization.load_der_public_key(base64.b64decode(key, validate=True))
    except (binascii.Error, ValueError, UnsupportedAlgorithm):
        raise ValueError(
            "not a SendGrid verification key (the base64 public key of Signed Event Webhook"
            " Requests)"
        ) from None
    if not isinstance(loaded, ec.EllipticCurvePublicKey):
        raise ValueError("the verification key must be an elliptic-curve (ECDSA) public key")
    return loaded
