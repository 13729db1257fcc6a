"""Hypothesis: no post makes an e-mail provider's intake or its worker-side reading raise
anything but the refusals they are allowed (SignatureError at intake, InvalidInput in the
worker); a 500 or a crashed task is never the answer."""

from __future__ import annotations

import contextlib
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crm_core.config import Settings
from crm_core.errors import InvalidInput
from crm_core.ingestion.handlers import provider_email, provider_reports
from crm_core.ingestion.models import InboxEvent
from crm_core.ingestion.policy import IngestPolicy
from crm_core.providers import PROVIDERS, ProviderRequest, SignatureError
from tests.mail_provider_requests import mailgun_route_fields, sendgrid_inbound

POLICY = IngestPolicy.from_settings(Settings())
BOUNDARY = "xYzZY"
MEDIA_TYPES = [
    "application/json",
    "application/x-www-form-urlencoded",
    f"multipart/form-data; boundary={BOUNDARY}",
    "multipart/form-data",
]
# Lone surrogates too: JSON's \ud800 escapes decode to them.
texts = st.text(alphabet=st.characters(exclude_categories=()), max_size=200)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | texts,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(texts, inner, max_size=4),
    max_leaves=20,
)


def _part(name: str, value: bytes, filename: str | None) -> bytes:
    disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
    head = f"--{BOUNDARY}\r\nContent-Disposition: {disposition}\r\n\r\n"
    # Any bytes a client may send, lone surrogates' UTF-8 encodings too.
    return head.encode("utf-8", "surrogatepass") + value + b"\r\n"


field_names = (
    st.sampled_from(
        [
            *mailgun_route_fields(),
            "headers",
            "text",
            "html",
            "charsets",
            "email",
            "attachment-info",
            "attachment1",
            "attachment-1",
            "token",
            "timestamp",
            "signature",
            "body-mime",
        ]
    )
    | texts
)
multipart_bodies = st.lists(
    st.tuples(field_names, st.binary(max_size=300), st.none() | texts), max_size=12
).map(lambda parts: b"".join(_part(*p) for p in parts) + f"--{BOUNDARY}--\r\n".encode())
json_bodies = st.dictionaries(
    st.sampled_from(
        [
            "FromFull",
            "ToFull",
            "CcFull",
            "Subject",
            "Date",
            "Headers",
            "TextBody",
            "HtmlBody",
            "Attachments",
            "RecordType",
            "Type",
            "ID",
            "Email",
            "MessageID",
            "StrippedTextReply",
            "signature",
            "event-data",
        ]
    )
    | texts,
    json_values,
    max_size=10,
).map(lambda d: json.dumps(d).encode()) | st.lists(json_values, max_size=5).map(
    lambda d: json.dumps(d).encode()
)
bodies = multipart_bodies | json_bodies | st.binary(max_size=2000)


@pytest.mark.parametrize("provider", ["mailgun", "sendgrid", "postmark"])
@given(body=bodies, media_type=st.sampled_from(MEDIA_TYPES))
@settings(max_examples=150, deadline=None)
def test_hostile_posts_are_refused_or_classified_at_intake(
    provider: str, body: bytes, media_type: str
) -> None:
    request = ProviderRequest(
        {"Content-Type": media_type, "Authorization": "Basic dTpw"}, body, media_type.split(";")[0]
    )
    chosen = PROVIDERS[provider]
    with contextlib.suppress(SignatureError):
        chosen.verify(request, secrets=["u:p"], now=1_764_500_000, tolerance=300)
    delivery = chosen.classify(request, max_depth=32)
    assert 0 < len(delivery.webhook_id) <= 255


@pytest.mark.parametrize("provider", ["mailgun", "sendgrid", "postmark"])
@given(body=bodies, media_type=st.sampled_from(MEDIA_TYPES))
@settings(max_examples=150, deadline=None)
def test_hostile_posts_are_read_or_refused_by_name_in_the_worker(
    provider: str, body: bytes, media_type: str
) -> None:
    event = InboxEvent(body=body, content_type=media_type, kind="emails")
    with contextlib.suppress(InvalidInput):
        provider_email(provider)(event, POLICY)
    with contextlib.suppress(InvalidInput):
        provider_reports(provider)(event, POLICY)


def test_a_real_post_survives_the_strategies_shape() -> None:
    body, content_type = sendgrid_inbound("inbound_parsed.multipart")
    event = InboxEvent(body=body, content_type=content_type, kind="emails")
    assert provider_email("sendgrid")(event, POLICY).from_address == "renee@example.net"
