"""A NUL (or an unpaired surrogate) in a URL or a JSON body is a 4xx naming where it is,
never a 500 (PostgreSQL refuses such text) nor an intake 503 that asks for a retry."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from flask import Flask

from tests.webhooks.conftest import Sender

CUSTOMER = '{"name": %s, "primary_contact": {"email": "ada@example.com"}}'


@pytest.mark.parametrize(
    ("url", "field"),
    [
        ("/api/contacts?email=a%00b", "email"),
        ("/api/suppressions?email=%00", "email"),
        ("/api/audit?entity=%00", "entity"),
        ("/api/audit?actor=x%00", "actor"),
    ],
)
def test_a_nul_in_a_query_parameter_is_a_400_naming_it(
    app: Flask, api_key: str, url: str, field: str
) -> None:
    response = app.test_client().get(url, headers={"Authorization": f"Bearer {api_key}"})
    assert response.status_code == 400
    assert response.mimetype == "application/problem+json"
    assert [e["field"] for e in response.json["errors"]] == [field]


def test_a_nul_in_a_source_name_is_an_unknown_source_not_a_retry(
    app: Flask, sender: Sender
) -> None:
    client = app.test_client()
    for url in ("/webhooks/sh%00op/leads", "/webhooks/sh%00op"):
        response = client.post(url, data=b"{}", headers={"Content-Type": "application/json"})
        assert response.status_code == 404, url
        assert response.mimetype == "application/problem+json"
    # the real source still takes its webhooks
    assert sender.post("leads", b'{"email": "ada@example.com"}').status_code == 202


@pytest.mark.parametrize(("name", "field"), [('"Ada\\u0000"', "name"), ('"Ada\\udc00"', "name")])
def test_unstorable_text_in_a_written_document_is_a_422_naming_the_field(
    app: Flask, api_key: str, name: str, field: str
) -> None:
    response = app.test_client().post(
        "/api/customers",
        data=CUSTOMER % name,
        headers={"Authorization": f"Bearer {api_key}", "Content-Type": "application/json"},
    )
    assert response.status_code == 422, response.json
    assert field in [e["field"] for e in response.json["errors"]]


def test_unstorable_text_deep_in_a_campaign_segment_is_a_422_naming_it(
    app: Flask, make_key: Callable[..., str]
) -> None:
    key = make_key("sender", "send")
    body = (
        '{"name": "N", "code": "c\\u0000", "subject": "S", "text": "T",'
        ' "segment": {"all": [{"field": "email", "op": "eq", "value": "\\ud800"}]}}'
    )
    response = app.test_client().post(
        "/api/campaigns",
        data=body,
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
    )
    assert response.status_code == 422
    assert [e["field"] for e in response.json["errors"]] == ["code", "segment.all.0.value"]
