"""Signed unsubscribe links: who (contact) left which campaign, verifiable without a lookup table.

The token is an ``itsdangerous`` timed signature under its own salt, so a
token signed for any other purpose with the same key never validates here.
It carries ids only: the link ends up in mail logs and browser histories.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from itsdangerous import BadData, SignatureExpired, URLSafeTimedSerializer

from crm_core.errors import PermanentError

UNSUBSCRIBE_SALT = "crm.unsubscribe.v1"
UNSUBSCRIBE_PATH = "/unsubscribe/"


class InvalidUnsubscribeTokenError(PermanentError):
    """The token is tampered with, signed for something else, malformed, or expired."""

    def __init__(self, message: str, *, expired: bool = False) -> None:
        super().__init__(message)
        self.expired = expired


@dataclass(frozen=True)
class UnsubscribeClaim:
    """What a valid token says: this contact asked to leave this campaign's mailings."""

    contact_id: int
    campaign_id: int | None
    signed_at: dt.datetime


def _serializer(secret_key: str) -> URLSafeTimedSerializer:
    if not secret_key:
        raise ValueError("an unsubscribe token needs a non-empty secret key")
    return URLSafeTimedSerializer(secret_key, salt=UNSUBSCRIBE_SALT)


def make_unsubscribe_token(*, secret_key: str, contact_id: int, campaign_id: int | None) -> str:
    """A URL-safe signed token naming the contact and (for campaign mail) the campaign."""
    payload: dict[str, Any] = {"k": contact_id}
    if campaign_id is not None:
        payload["c"] = campaign_id
    return str(_serializer(secret_key).dumps(payload))


def read_unsubscribe_token(
    token: str, *, secret_key: str, max_age: dt.timedelta
) -> UnsubscribeClaim:
    """The claim of a valid token; InvalidUnsubscribeTokenError otherwise."""
    try:
        payload, signed_at = _serializer(secret_key).loads(
            token, max_age=int(max_age.total_seconds()), return_timestamp=True
        )
    except SignatureExpired:
        raise InvalidUnsubscribeTokenError("the link has expired", expired=True) from None
    except BadData:
        raise InvalidUnsubscribeTokenError("the link is not valid") from None
    return _claim(payload, signed_at)


def make_unsubscribe_url(public_url: str, token: str) -> str:
    """The link under the platform's public URL that a recipient opens or a client POSTs to."""
    return f"{public_url.rstrip('/')}{UNSUBSCRIBE_PATH}{token}"


def _claim(payload: Any, signed_at: dt.datetime) -> UnsubscribeClaim:
    # A valid signature over an unexpected shape can only come from a future
    # version or a bug; it is refused like any bad token rather than crashing.
    if not isinstance(payload, dict):
        raise InvalidUnsubscribeTokenError("the link is not valid")
    contact_id, campaign_id = payload.get("k"), payload.get("c")
    if not isinstance(contact_id, int) or not _is_id(contact_id):
        raise InvalidUnsubscribeTokenError("the link is not valid")
    if not (campaign_id is None or _is_id(campaign_id)):
        raise InvalidUnsubscribeTokenError("the link is not valid")
    return UnsubscribeClaim(
        contact_id=contact_id, campaign_id=campaign_id, signed_at=signed_at.astimezone(dt.UTC)
    )


def _is_id(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0
