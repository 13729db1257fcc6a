"""Custom senders' signatures, computed here from the documented algorithm (an HMAC of the
raw body, or of the joined timestamp form), and what the intake reads of their requests."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from werkzeug.datastructures import Headers

from crm_core.providers import ProviderRequest, SignatureError, get_provider
from crm_core.providers.custom import Custom
from crm_core.providers.custom_spec import load_mapping
from tests.provider_requests import (
    EXAMPLES,
    github_style_headers,
    lead_form_headers,
    provider_fixture,
)

SECRET = "It's a Secret to Everybody"
NOW = 1_764_500_000


def _provider(example: str, **changes: object) -> Custom:
    document = load_mapping((EXAMPLES / example).read_bytes()).model_dump(mode="json")
    for dotted, value in changes.items():
        node = document
        *path, last = dotted.split("__")
        for step in path:
            node = node[step]
        node[last] = value
    provider = get_provider("custom", document)
    assert isinstance(provider, Custom)
    return provider


def _verify(provider: Custom, headers: dict[str, str], body: bytes, now: float = NOW) -> None:
    request = ProviderRequest(Headers(headers), body, "application/json")
    provider.verify(request, secrets=["an older secret", SECRET], now=now, tolerance=300)


def test_github_s_own_example_verifies() -> None:
    """GitHub's documented test values: secret, payload and the signature it gives."""
    body = b"Hello, World!"
    expected = "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
    assert hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest() == expected
    _verify(_provider("github-style.toml"), {"X-Hub-Signature-256": f"sha256={expected}"}, body)


def test_a_github_style_signature_is_checked_against_the_raw_body() -> None:
    provider = _provider("github-style.toml")
    body = provider_fixture("custom/order_completed.json")
    headers = github_style_headers(SECRET, body)
    _verify(provider, headers, body)
    _verify(provider, {**headers, "X-Hub-Signature-256": headers["X-Hub-Signature-256"].upper()
                       .replace("SHA256=", "sha256=")}, body)  # fmt: skip
    refusals = [
        (github_style_headers("not the secret", body), body),
        (headers, body + b" "),
        ({**headers, "X-Hub-Signature-256": headers["X-Hub-Signature-256"][7:]}, body),
        ({**headers, "X-Hub-Signature-256": "sha256=zz"}, body),
        ({**headers, "X-Hub-Signature-256": "sha256="}, body),
        ({"Content-Type": "application/json"}, body),
    ]
    for sent, raw in refusals:
        with pytest.raises(SignatureError):
            _verify(provider, sent, raw)


def test_sha1_and_base64_are_schemes_a_file_can_choose() -> None:
    body = b'{"id": 1}'
    sha1 = _provider("github-style.toml", signature__header="X-Hub-Signature",
                     signature__algorithm="sha1")  # fmt: skip
    digest = hmac.new(SECRET.encode(), body, hashlib.sha1).hexdigest()
    _verify(sha1, {"X-Hub-Signature": f"sha256={digest}"}, body)
    b64 = _provider("github-style.toml", signature__encoding="base64", signature__prefix="")
    encoded = base64.b64encode(hmac.new(SECRET.encode(), body, hashlib.sha256).digest()).decode()
    _verify(b64, {"X-Hub-Signature-256": encoded}, body)
    with pytest.raises(SignatureError):  # a SHA-256 digest is not what SHA-1 makes
        _verify(sha1, {"X-Hub-Signature": "sha256=" + hmac.new(
            SECRET.encode(), body, hashlib.sha256).hexdigest()}, body)  # fmt: skip


def test_a_signed_timestamp_is_signed_with_the_body_and_must_be_recent() -> None:
    provider = _provider("lead-form.toml")
    body = provider_fixture("custom/lead_submitted.json")
    _verify(provider, lead_form_headers(SECRET, body, at=NOW), body)
    _verify(provider, lead_form_headers(SECRET, body, at=NOW - 299), body)
    headers = lead_form_headers(SECRET, body, at=NOW)
    refusals = [
        lead_form_headers(SECRET, body, at=NOW - 301),  # the file's tolerance, not the default
        lead_form_headers(SECRET, body, at=NOW + 301),
        {**headers, "X-Form-Timestamp": str(NOW + 1)},  # the timestamp is signed too
        {**headers, "X-Form-Timestamp": "yesterday"},
        {k: v for k, v in headers.items() if k != "X-Form-Timestamp"},
        {**headers, "X-Form-Signature": headers["X-Form-Signature"][3:]},  # no v1= prefix
        {**headers, "X-Form-Signature": "v1=not base64!"},
    ]
    for sent in refusals:
        with pytest.raises(SignatureError):
            _verify(provider, sent, body)


def test_an_iso_timestamp_and_another_joined_form() -> None:
    provider = _provider(
        "lead-form.toml",
        signature__timestamp__format="iso8601",
        signature__timestamp__signed="v0:{timestamp}:{body}",
    )
    body = b'{"submission": {"id": "s1"}}'
    at = "2025-11-30T10:53:20Z"
    signed = f"v0:{at}:".encode() + body
    digest = base64.b64encode(hmac.new(SECRET.encode(), signed, hashlib.sha256).digest())
    headers = {"X-Form-Timestamp": at, "X-Form-Signature": "v1=" + digest.decode()}
    _verify(provider, headers, body, now=1_764_500_000 + 5)
    with pytest.raises(SignatureError):
        _verify(provider, headers, body, now=time.time() + 3600)


def _classify(provider: Custom, headers: dict[str, str], body: bytes):  # type: ignore[no-untyped-def]
    return provider.classify(ProviderRequest(Headers(headers), body, "application/json"),
                             max_depth=32)  # fmt: skip


def test_the_delivery_id_and_topic_come_from_headers_and_other_topics_are_ignored() -> None:
    provider = _provider("github-style.toml")
    body = provider_fixture("custom/order_completed.json")
    delivery = _classify(provider, github_style_headers(SECRET, body, delivery="d-1"), body)
    assert (delivery.webhook_id, delivery.kind, delivery.topic, delivery.handled) == (
        "d-1",
        "orders",
        "order.completed",
        True,
    )
    assert delivery.headers == {"x-shop-delivery": "d-1", "x-shop-event": "order.completed"}
    ping = _classify(provider, github_style_headers(SECRET, b"{}", event="ping"), b"{}")
    assert (ping.kind, ping.topic, ping.handled, ping.errors) == ("orders", "ping", False, None)
    missing = _classify(provider, {"X-Shop-Event": "order.completed"}, body)
    assert missing.webhook_id.startswith("sha256:")
    assert [e.field for e in missing.errors or []] == ["X-Shop-Delivery"]


def test_the_delivery_id_can_be_a_json_pointer_into_the_body() -> None:
    provider = _provider("lead-form.toml")
    body = provider_fixture("custom/lead_submitted.json")
    delivery = _classify(provider, {}, body)
    assert (delivery.webhook_id, delivery.kind, delivery.handled) == (
        "sub_01JE2M6S4V9ZQK",
        "leads",
        True,
    )
    numbered = _classify(provider, {}, json.dumps({"submission": {"id": 42}}).encode())
    assert numbered.webhook_id == "42"
    for odd in (b'{"submission": {"id": true}}', b'{"submission": []}', b"[1]", b"not json"):
        invalid = _classify(provider, {}, odd)
        assert invalid.errors
        assert invalid.webhook_id.startswith("sha256:")


@pytest.mark.parametrize("example", ["github-style.toml", "lead-form.toml"])
@given(
    values=st.lists(st.none() | st.text(max_size=80) | st.just("v1=") | st.just("sha256="),
                    min_size=4, max_size=4),
    raw=st.binary(max_size=500) | st.just(b'{"submission": {"id": {"a": 1}}}'),
)  # fmt: skip
@settings(max_examples=100, deadline=None)
def test_hostile_requests_are_refused_or_classified_never_crash(
    example: str, values: list[str | None], raw: bytes
) -> None:
    names = ["X-Hub-Signature-256", "X-Shop-Delivery", "X-Form-Signature", "X-Form-Timestamp"]
    sent = {n: v for n, v in zip(names, values, strict=True) if v is not None and v.isprintable()}
    provider = _provider(example)
    with contextlib.suppress(SignatureError):
        _verify(provider, sent, raw)
    delivery = _classify(provider, sent, raw)
    assert 0 < len(delivery.webhook_id) <= 255


def test_a_custom_source_without_a_mapping_verifies_nothing() -> None:
    provider = get_provider("custom", None)
    with pytest.raises(SignatureError):
        _verify(provider, {"X-Hub-Signature-256": "sha256=00"}, b"{}")  # type: ignore[arg-type]
    assert get_provider("custom", {"kind": "nonsense"}).mapping is None  # type: ignore[attr-defined]
