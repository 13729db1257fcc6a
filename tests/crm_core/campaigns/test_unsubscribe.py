"""Unsubscribe tokens: round trip, and refusal of tampered, expired and wrong-salt tokens."""

from __future__ import annotations

import datetime as dt
import time

import pytest
from itsdangerous import TimestampSigner, URLSafeTimedSerializer

from crm_core.campaigns.unsubscribe import (
    UNSUBSCRIBE_SALT,
    InvalidUnsubscribeTokenError,
    make_unsubscribe_token,
    make_unsubscribe_url,
    read_unsubscribe_token,
)

KEY = "test-secret-key"
DAY = dt.timedelta(days=1)


def test_a_token_round_trips_its_ids() -> None:
    token = make_unsubscribe_token(secret_key=KEY, contact_id=7, campaign_id=3)
    claim = read_unsubscribe_token(token, secret_key=KEY, max_age=DAY)
    assert (claim.contact_id, claim.campaign_id) == (7, 3)
    assert abs((dt.datetime.now(dt.UTC) - claim.signed_at).total_seconds()) < 120


def test_automatic_mail_tokens_have_no_campaign() -> None:
    token = make_unsubscribe_token(secret_key=KEY, contact_id=7, campaign_id=None)
    assert read_unsubscribe_token(token, secret_key=KEY, max_age=DAY).campaign_id is None


def test_the_token_is_url_safe_and_carries_no_address() -> None:
    token = make_unsubscribe_token(secret_key=KEY, contact_id=7, campaign_id=3)
    assert all(c.isalnum() or c in "-_." for c in token)
    url = make_unsubscribe_url("https://crm.example.com/", token)
    assert url == f"https://crm.example.com/unsubscribe/{token}"
    assert make_unsubscribe_url("https://crm.example.com", token) == url


def tampered(token: str) -> str:
    payload, rest = token.split(".", 1)
    flipped = payload[:-1] + ("A" if payload[-1] != "A" else "B")
    return f"{flipped}.{rest}"


@pytest.mark.parametrize(
    "token",
    [
        tampered(make_unsubscribe_token(secret_key=KEY, contact_id=7, campaign_id=3)),
        make_unsubscribe_token(secret_key=KEY, contact_id=7, campaign_id=3)[:-2],
        make_unsubscribe_token(secret_key="another key", contact_id=7, campaign_id=3),
        URLSafeTimedSerializer(KEY, salt="crm.other.v1").dumps({"k": 7, "c": 3}),
        URLSafeTimedSerializer(KEY).dumps({"k": 7, "c": 3}),
        URLSafeTimedSerializer(KEY, salt=UNSUBSCRIBE_SALT).dumps({"k": "7"}),
        URLSafeTimedSerializer(KEY, salt=UNSUBSCRIBE_SALT).dumps({"k": True}),
        URLSafeTimedSerializer(KEY, salt=UNSUBSCRIBE_SALT).dumps([7, 3]),
        URLSafeTimedSerializer(KEY, salt=UNSUBSCRIBE_SALT).dumps({"k": 7, "c": -1}),
        "",
        "garbage",
        "a.b.c",
        "é.ü.ß",
    ],
    ids=[
        "tampered", "truncated", "other-key", "wrong-salt", "no-salt", "id-as-text",
        "id-as-bool", "not-an-object", "negative-campaign", "empty", "garbage", "dots",
        "non-ascii",
    ],
)  # fmt: skip
def test_bad_tokens_are_refused_cleanly(token: str) -> None:
    with pytest.raises(InvalidUnsubscribeTokenError) as caught:
        read_unsubscribe_token(token, secret_key=KEY, max_age=DAY)
    assert not caught.value.expired
    assert str(caught.value) == "the link is not valid"


def test_an_expired_token_is_refused_and_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    signed_long_ago = int(time.time()) - 3 * 24 * 3600
    monkeypatch.setattr(TimestampSigner, "get_timestamp", lambda self: signed_long_ago)
    token = make_unsubscribe_token(secret_key=KEY, contact_id=7, campaign_id=3)
    monkeypatch.undo()
    with pytest.raises(InvalidUnsubscribeTokenError, match="expired") as caught:
        read_unsubscribe_token(token, secret_key=KEY, max_age=DAY)
    assert caught.value.expired
    claim = read_unsubscribe_token(token, secret_key=KEY, max_age=7 * DAY)
    assert claim.contact_id == 7


def test_an_empty_key_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="secret key"):
        make_unsubscribe_token(secret_key="", contact_id=1, campaign_id=None)
