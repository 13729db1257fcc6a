"""The intake with keys that cannot open the sources' secrets: 503 naming the setting."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import Engine, func, select

from crm_core.config import Settings
from crm_core.db import make_session_factory
from crm_core.encryption.keyring import Keyring
from crm_core.ingestion import services
from crm_core.ingestion.models import InboxEvent
from tests.signed import signed_headers
from webhooks.app import create_app

BODY = b'{"email": "ada@example.com"}'


@pytest.mark.parametrize(
    ("keys", "detail"),
    [
        ("", "CRM_ENCRYPTION_KEYS must be set when CRM_DATABASE_URL is"),
        (Keyring.generate_key(), "does not decrypt under any key in CRM_ENCRYPTION_KEYS"),
    ],
    # Named, not by value: the key is random, and every xdist worker must collect the same ids.
    ids=["no-keys", "another-key"],
)
def test_a_source_whose_secret_cannot_be_read_is_a_503_and_nothing_is_stored(
    database_url: str, committed_db: Engine, keys: str, detail: str
) -> None:
    with make_session_factory(committed_db).begin() as session:
        _, secret = services.create_source(session, name="shop")
    settings = Settings(
        database_url=database_url,
        broker_url="memory://",
        ratelimit_url="memory://",
        ratelimit_prefix=f"test-{uuid.uuid4().hex}",
        encryption_keys=keys,
    )
    client = create_app(settings).test_client()
    response = client.post("/webhooks/shop/leads", data=BODY, headers=signed_headers(secret, BODY))
    assert response.status_code == 503
    assert response.mimetype == "application/problem+json"
    assert response.get_json()["type"] == "/problems/misconfigured"
    assert detail in response.get_json()["detail"]
    assert secret not in response.get_data(as_text=True)
    with committed_db.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(InboxEvent)) == 0
