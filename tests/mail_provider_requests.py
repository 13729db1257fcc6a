"""E-mail provider requests for tests, signed and encoded as each provider documents it.

Independent of ``crm_core.providers``: Mailgun's signature is computed here from its
documented algorithm, SendGrid's with a P-256 key made here (its private half plays
SendGrid's), and the forms are encoded by urllib3.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from urllib3 import encode_multipart_formdata

from tests.provider_requests import provider_fixture

JSON = "application/json"
MAILGUN_KEY = "key-3ax6xnjp29jd6fds4gc373sgvjxteol0"
# One of SendGrid's own test vectors (sendgrid-python, test/unit/test_eventwebhook.py).
SENDGRID_VECTOR = {
    "public_key": "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE83T4O/n84iotIvIW4mdBgQ/7dAfSmpqIM8kF9mN1"
    "flpVKS3GRqe62gw+2fNNRaINXvVpiglSI8eNEc6wEA3F+g==",
    "signature": "MEUCIGHQVtGj+Y3LkG9fLcxf3qfI10QysgDWmMOVmxG0u6ZUAiEAyBiXDWzM+uOe5W0JuG"
    "+luQAbPIqHh89M15TluLtEZtM=",
    "timestamp": "1600112502",
    "payload": json.dumps(
        [
            {
                "email": "hello@world.com",
                "event": "dropped",
                "reason": "Bounced Address",
                "sg_event_id": "ZHJvcC0xMDk5NDkxOS1MUnpYbF9OSFN0T0doUTRrb2ZTbV9BLTA",
                "sg_message_id": (
                    "LRzXl_NHStOGhQ4kofSm_A.filterdrecv-p3mdw1-756b745b58-kmzbl-18-5F5FC76C-9.0"
                ),
                "smtp-id": "<LRzXl_NHStOGhQ4kofSm_A@ismtpd0039p1iad1.sendgrid.net>",
                "timestamp": 1600112492,
            }
        ],
        sort_keys=True,
        separators=(",", ":"),
    )
    + "\r\n",
}


def mailgun_signature(key: str, timestamp: str, token: str) -> str:
    """hex(HMAC-SHA256(webhook signing key, timestamp + token))."""
    return hmac.new(key.encode(), (timestamp + token).encode(), hashlib.sha256).hexdigest()


def mailgun_event(
    fixture: str, *, key: str = MAILGUN_KEY, token: str | None = None, at: float | None = None
) -> bytes:
    """A Mailgun event webhook fixture (``mailgun/failed_permanent.json``), signed now."""
    document = json.loads(provider_fixture(f"mailgun/{fixture}"))
    timestamp = str(int(time.time() if at is None else at))
    token = token or secrets.token_hex(25)
    document["signature"] = {
        "timestamp": timestamp,
        "token": token,
        "signature": mailgun_signature(key, timestamp, token),
    }
    return json.dumps(document).encode()


def mailgun_form(
    fields: dict[str, str],
    *,
    key: str = MAILGUN_KEY,
    files: dict[str, tuple[str, bytes, str]] | None = None,
    token: str | None = None,
    at: float | None = None,
) -> tuple[bytes, str]:
    """A route's forward() post of ``fields`` (and files: multipart), signed now; the body and
    its Content-Type."""
    timestamp = str(int(time.time() if at is None else at))
    token = token or secrets.token_hex(25)
    signed = {
        **fields,
        "timestamp": timestamp,
        "token": token,
        "signature": mailgun_signature(key, timestamp, token),
    }
    if not files:
        from urllib.parse import urlencode

        return urlencode(signed).encode(), "application/x-www-form-urlencoded"
    body, content_type = encode_multipart_formdata({**signed, **files})
    return body, content_type


def mailgun_route_fields(**changes: str) -> dict[str, str]:
    """The documented fields of a route's parsed post, from the fixture, with ``changes``."""
    fields: dict[str, str] = json.loads(provider_fixture("mailgun/route_forward_fields.json"))
    return {**fields, **changes}


class SendGridSigner:
    """Plays SendGrid's Signed Event Webhook: a P-256 key pair whose public half the source
    is given, base64 DER as SendGrid shows it."""

    def __init__(self) -> None:
        self._key = ec.generate_private_key(ec.SECP256R1())
        der = self._key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        self.public_key = base64.b64encode(der).decode()

    def headers(self, body: bytes, *, at: float | None = None) -> dict[str, str]:
        timestamp = str(int(time.time() if at is None else at))
        signature = self._key.sign(timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))
        return {
            "Content-Type": JSON,
            "User-Agent": "SendGrid Event API",
            "X-Twilio-Email-Event-Webhook-Signature": base64.b64encode(signature).decode(),
            "X-Twilio-Email-Event-Webhook-Timestamp": timestamp,
        }


def basic(credentials: str) -> dict[str, str]:
    """The Authorization header a provider sends for ``user:password`` in the URL."""
    return {"Authorization": "Basic " + base64.b64encode(credentials.encode()).decode()}


def sendgrid_inbound(fixture: str) -> tuple[bytes, str]:
    """An Inbound Parse post fixture (``sendgrid/inbound_parsed.multipart``) and its type."""
    return provider_fixture(f"sendgrid/{fixture}"), "multipart/form-data; boundary=xYzZY"


def postmark_json(fixture: str, **changes: Any) -> bytes:
    document = json.loads(provider_fixture(f"postmark/{fixture}"))
    document.update(changes)
    return json.dumps(document).encode()
