"""A number in a query is ASCII digits: a superscript or another script's digits are refused
by name, never a 500 (``str.isdigit`` takes them, ``int`` does not always)."""

from __future__ import annotations

import pytest
from flask import Flask

from tests.webhooks.conftest import Sender


@pytest.mark.parametrize(
    ("path", "params", "field"),
    [
        ("/api/customers", {"limit": "²"}, "limit"),
        ("/api/customers", {"limit": "١٢"}, "limit"),
        ("/api/contacts", {"customer_id": "²"}, "customer_id"),
        ("/api/followups", {"limit": "²"}, "limit"),
        ("/api/audit", {"id": "²"}, "id"),
    ],
)
def test_a_number_in_other_digits_is_a_400_naming_it(
    app: Flask, sender: Sender, api_key: str, path: str, params: dict[str, str], field: str
) -> None:
    response = sender.client.get(
        path, query_string=params, headers={"Authorization": f"Bearer {api_key}"}
    )
    assert response.status_code == 400, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    assert field in {error["field"] for error in response.json["errors"]}


def test_a_preview_for_a_contact_in_other_digits_is_a_422(
    app: Flask, sender: Sender, api_key: str
) -> None:
    response = sender.client.get(
        "/api/campaigns/1/preview",
        query_string={"contact_id": "²"},
        headers={"Authorization": f"Bearer {api_key}"},
    )
    assert response.status_code == 422
    assert response.mimetype == "application/problem+json"
