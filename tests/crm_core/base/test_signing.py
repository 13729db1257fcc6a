"""Standard Webhooks v1: the spec's vector, the reference library, and hostile headers."""

from __future__ import annotations

import base64
import datetime as dt
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from standardwebhooks import Webhook

from crm_core.base import signing
from crm_core.base.signing import SignatureError, generate_secret, sign, verify
from tests.signed import fixture_json

VECTOR = fixture_json("spec_vector.json")


def test_spec_test_vector_signs_and_verifies_with_a_fixed_clock() -> None:
    body = VECTOR["body"].encode()
    ts = int(VECTOR["timestamp"])
    assert (
        sign(VECTOR["secret"], msg_id=VECTOR["msg_id"], timestamp=ts, body=body)
        == (VECTOR["signature"])
    )
    verify(
        [VECTOR["secret"]],
        msg_id=VECTOR["msg_id"],
        timestamp=VECTOR["timestamp"],
        signature=VECTOR["signature"],
        body=body,
        now=ts + 10,
    )


def test_spec_test_vector_is_refused_at_the_real_time() -> None:
    with pytest.raises(SignatureError, match="from now"):
        verify(
            [VECTOR["secret"]],
            msg_id=VECTOR["msg_id"],
            timestamp=VECTOR["timestamp"],
            signature=VECTOR["signature"],
            body=VECTOR["body"].encode(),
        )


@given(body=st.text(max_size=500), msg_id=st.from_regex(r"\A[A-Za-z0-9_]{1,40}\Z"))
@settings(max_examples=50, deadline=None)
def test_whatever_the_reference_library_signs_we_accept(body: str, msg_id: str) -> None:
    secret = generate_secret()
    now = dt.datetime.now(dt.UTC)
    header = Webhook(secret).sign(msg_id, now, body)
    verify(
        [secret],
        msg_id=msg_id,
        timestamp=str(int(now.timestamp())),
        signature=header,
        body=body.encode(),
    )


def test_the_reference_library_accepts_what_we_sign() -> None:
    secret = generate_secret()
    body = b'{"email": "a@example.com"}'
    ts = int(time.time())
    header = sign(secret, msg_id="msg_1", timestamp=ts, body=body)
    headers = {"webhook-id": "msg_1", "webhook-timestamp": str(ts), "webhook-signature": header}
    assert Webhook(secret).verify(body, headers) == {"email": "a@example.com"}


def test_generated_secrets_are_whsec_and_at_least_24_random_bytes() -> None:
    first, second = generate_secret(), generate_secret()
    assert first.startswith("whsec_")
    assert first != second
    assert len(base64.b64decode(first.removeprefix("whsec_"))) >= 24


def _check(secret: str, *, body: bytes = b"{}", ts: int | None = None, **overrides: str) -> None:
    now = int(time.time())
    ts = now if ts is None else ts
    fields = {
        "msg_id": "msg_x",
        "timestamp": str(ts),
        "signature": sign(secret, msg_id="msg_x", timestamp=ts, body=b"{}"),
    }
    fields.update(overrides)
    verify([secret], body=body, now=now, **fields)


def test_a_valid_signature_passes() -> None:
    _check(generate_secret())


@pytest.mark.parametrize(
    ("case", "kwargs", "message"),
    [
        ("tampered body", {"body": b'{"x": 1}'}, "no signature matches"),
        ("missing id", {"msg_id": ""}, "missing webhook-id"),
        ("non-ASCII id", {"msg_id": "msg_é"}, "printable ASCII"),
        ("long id", {"msg_id": "m" * 256}, "printable ASCII"),
        ("missing timestamp", {"timestamp": ""}, "missing webhook-timestamp"),
        ("non-numeric timestamp", {"timestamp": "12abc"}, "whole seconds"),
        ("float timestamp", {"timestamp": "1614265330.5"}, "whole seconds"),
        ("missing signature", {"signature": ""}, "missing webhook-signature"),
        ("no comma", {"signature": "v1abc"}, "v1,<base64>"),
        ("bad base64", {"signature": "v1,@@@"}, "base64"),
        ("only v2", {"signature": "v2,AAAA"}, "no v1 signature"),
        ("huge header", {"signature": "v1,AAAA " * 2000}, "too long"),
        ("too many", {"signature": " ".join(["v1,AAAA"] * 17)}, "more than"),
    ],
)
def test_bad_input_is_a_signature_error(case: str, kwargs: dict, message: str) -> None:
    with pytest.raises(SignatureError, match=message):
        _check(generate_secret(), **kwargs)


def test_a_wrong_secret_fails() -> None:
    secret = generate_secret()
    ts = int(time.time())
    header = sign(secret, msg_id="m", timestamp=ts, body=b"{}")
    with pytest.raises(SignatureError):
        verify([generate_secret()], msg_id="m", timestamp=str(ts), signature=header, body=b"{}")


@pytest.mark.parametrize("skew", [-301, 301])
def test_timestamps_more_than_five_minutes_off_are_refused(skew: int) -> None:
    with pytest.raises(SignatureError, match="300 seconds"):
        _check(generate_secret(), ts=int(time.time()) + skew)


@pytest.mark.parametrize("skew", [-299, 299])
def test_timestamps_within_five_minutes_pass(skew: int) -> None:
    _check(generate_secret(), ts=int(time.time()) + skew)


def test_any_one_valid_signature_among_several_passes() -> None:
    secret = generate_secret()
    ts = int(time.time())
    good = sign(secret, msg_id="msg_x", timestamp=ts, body=b"{}")
    other = sign(generate_secret(), msg_id="msg_x", timestamp=ts, body=b"{}")
    _check(secret, ts=ts, signature=f"v2,xyz= {other} {good}")


def test_any_one_of_several_secrets_verifies_during_a_rotation() -> None:
    old, new = generate_secret(), generate_secret()
    ts = int(time.time())
    header = sign(old, msg_id="m", timestamp=ts, body=b"{}")
    verify([new, old], msg_id="m", timestamp=str(ts), signature=header, body=b"{}")


def test_unpadded_secrets_decode_like_the_reference_library() -> None:
    key = signing.decode_secret(VECTOR["secret"].rstrip("="))
    assert key == base64.b64decode(VECTOR["secret"].removeprefix("whsec_"))


@given(
    msg_id=st.none() | st.text(max_size=300),
    timestamp=st.none() | st.text(max_size=30) | st.integers().map(str),
    signature=st.none() | st.text(max_size=5000),
    body=st.binary(max_size=2000),
)
@settings(max_examples=300, deadline=None)
def test_fuzzed_headers_only_ever_raise_signature_error(
    msg_id: str | None, timestamp: str | None, signature: str | None, body: bytes
) -> None:
    with pytest.raises(SignatureError):
        verify(
            [generate_secret()], msg_id=msg_id, timestamp=timestamp, signature=signature, body=body
        )
