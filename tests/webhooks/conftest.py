"""A web app on the test database, a source with its secret, and a signed-post helper."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import Engine
from werkzeug.test import TestResponse

from crm_core.config import Settings
from crm_core.ingestion import services
from crm_core.people import api_keys
from crm_core.people.permissions import ALL_SCOPES, Actor
from tests.signed import signed_headers
from webhooks.app import create_app

OPERATOR = Actor.operator("tests")


@pytest.fixture
def app(database_url: str, committed_db: Engine) -> Flask:
    settings = Settings(
        database_url=database_url,
        broker_url="memory://",
        ratelimit_url="memory://",
        ratelimit_prefix=f"test-{uuid.uuid4().hex}",
        max_json_bytes=64 * 1024,
        max_email_bytes=256 * 1024,
        secret_key="webhooks test secret key",
    )
    return create_app(settings)


@dataclass
class Sender:
    """A registered source that posts signed webhooks through the test client."""

    client: FlaskClient
    name: str
    secret: str

    def post(
        self,
        kind: str,
        body: bytes,
        *,
        msg_id: str | None = None,
        content_type: str = "application/json",
        headers: dict[str, str] | None = None,
    ) -> TestResponse:
        sent = signed_headers(self.secret, body, msg_id=msg_id, content_type=content_type)
        sent.update(headers or {})
        return self.client.post(f"/webhooks/{self.name}/{kind}", data=body, headers=sent)


@pytest.fixture
def make_sender(app: Flask) -> Callable[..., Sender]:
    def make(name: str = "shop", rate_limit_per_minute: int | None = None) -> Sender:
        with app.extensions["crm"].sessions.begin() as session:
            _, secret = services.create_source(
                session, name=name, rate_limit_per_minute=rate_limit_per_minute
            )
        return Sender(app.test_client(), name, secret)

    return make


@pytest.fixture
def sender(make_sender: Callable[..., Sender]) -> Sender:
    return make_sender()


@pytest.fixture
def make_key(app: Flask) -> Callable[..., str]:
    """Create an API key with ``scopes`` (perhaps a user's); returns the key itself."""

    def make(name: str, *scopes: str, user: str | None = None) -> str:
        with app.extensions["crm"].sessions.begin() as session:
            _, key = api_keys.create_api_key(
                session, actor=OPERATOR, name=name, scopes=scopes, user_email=user
            )
        return key

    return make


@pytest.fixture
def api_key(make_key: Callable[..., str]) -> str:
    """A key with every scope, like the keys made before scopes existed."""
    return make_key("ops", *ALL_SCOPES)
