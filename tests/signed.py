"""Signed webhook requests for tests, made with the reference ``standardwebhooks`` library."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from pathlib import Path

from standardwebhooks import Webhook

FIXTURES = Path(__file__).parent / "fixtures" / "webhooks"


def fixture_bytes(name: str) -> bytes:
    """A literal payload from ``tests/fixtures/webhooks``."""
    return (FIXTURES / name).read_bytes()


def fixture_json(name: str) -> dict:
    return json.loads(fixture_bytes(name))


def signed_headers(
    secret: str,
    body: bytes,
    *,
    msg_id: str | None = None,
    at: dt.datetime | None = None,
    content_type: str = "application/json",
) -> dict[str, str]:
    """The Standard Webhooks headers the reference library produces for ``body``."""
    msg_id = msg_id or f"msg_{uuid.uuid4().hex}"
    at = at or dt.datetime.now(dt.UTC)
    signature = Webhook(secret).sign(msg_id, at, body.decode("utf-8"))
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": signature,
        "Content-Type": content_type,
    }
