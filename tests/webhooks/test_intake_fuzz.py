"""Hypothesis: no combination of signature headers and body gets past 401, or to a 5xx."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from crm_core.ingestion.models import InboxEvent
from tests.webhooks.conftest import Sender

# Header values a client can actually send: latin-1 text without line breaks.
header_text = st.text(
    alphabet=st.characters(min_codepoint=0x20, max_codepoint=0xFF, blacklist_characters="\x7f"),
    max_size=400,
)
_addresses = (f"10.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}" for n in itertools.count(1))
header = st.none() | header_text | st.integers().map(str) | st.just("v1,") | st.just("")


@given(msg_id=header, timestamp=header, signature=header, body=st.binary(max_size=4000))
@settings(
    max_examples=250,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@pytest.mark.parametrize("kind", ["leads", "emails"])
def test_fuzzed_signature_headers_and_bodies_never_get_in(
    sender: Sender,
    kind: str,
    msg_id: str | None,
    timestamp: str | None,
    signature: str | None,
    body: bytes,
) -> None:
    headers = {"Content-Type": "application/json"}
    for name, value in [
        ("webhook-id", msg_id),
        ("webhook-timestamp", timestamp),
        ("webhook-signature", signature),
    ]:
        if value is not None:
            headers[name] = value.strip()
    # Each example from an address of its own: one address gets 429 after its budget of failures.
    response = sender.client.post(
        f"/webhooks/shop/{kind}",
        data=body,
        headers=headers,
        environ_overrides={"REMOTE_ADDR": next(_addresses)},
    )
    assert response.status_code in (400, 401)
    assert response.content_type == "application/problem+json"


@given(body=st.binary(max_size=4000))
@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_correctly_signed_fuzzed_bodies_are_202_or_422(sender: Sender, body: bytes) -> None:
    if not _is_utf8(body):
        body = body.decode("latin-1").encode()
    response = sender.post("leads", body)
    assert response.status_code in (202, 422)


def test_nothing_was_stored_by_unsigned_requests(sender: Sender) -> None:
    sender.client.post("/webhooks/shop/leads", data=b"\xff\xfe", headers={"webhook-id": "x"})
    with sender.client.application.extensions["crm"].sessions() as session:
        assert session.scalar(select(func.count()).select_from(InboxEvent)) == 0


def _is_utf8(body: bytes) -> bool:
    try:
        body.decode()
    except UnicodeDecodeError:
        return False
    return True
