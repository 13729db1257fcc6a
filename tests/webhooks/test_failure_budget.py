"""Failed unauthenticated requests per client address: 401/404 within the budget, then 429."""

from __future__ import annotations

import uuid

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import Engine
from werkzeug.test import TestResponse

from crm_core.config import Settings
from crm_core.ingestion import services
from tests.services import REDIS_URL, free_port, redis_reason, unavailable
from tests.signed import signed_headers
from webhooks.app import create_app
from webhooks.failure_budget import client_key

BUDGET = 3
LEAD = b'{"email": "lead@example.com"}'


def make_app(database_url: str, **overrides: object) -> Flask:
    options: dict[str, object] = {
        "database_url": database_url,
        "broker_url": "memory://",
        "ratelimit_url": "memory://",
        "ratelimit_prefix": f"test-{uuid.uuid4().hex}",
        "auth_failures_per_window": BUDGET,
        **overrides,
    }
    return create_app(Settings(**options))  # type: ignore[arg-type]


@pytest.fixture
def app(database_url: str, committed_db: Engine) -> Flask:
    return make_app(database_url)


def add_source(app: Flask, name: str = "shop") -> str:
    with app.extensions["crm"].sessions.begin() as session:
        _, secret = services.create_source(session, name=name)
    return secret


def post(
    client: FlaskClient,
    secret: str,
    *,
    source: str = "shop",
    address: str = "198.51.100.7",
    forwarded: str | None = None,
) -> TestResponse:
    headers = signed_headers(secret, LEAD)
    if forwarded is not None:
        headers["X-Forwarded-For"] = forwarded
    return client.post(
        f"/webhooks/{source}/leads",
        data=LEAD,
        headers=headers,
        environ_overrides={"REMOTE_ADDR": address},
    )


WRONG = "whsec_" + "A" * 43 + "="


def test_bad_signatures_spend_the_budget_then_everything_from_there_is_429(app: Flask) -> None:
    secret = add_source(app)
    client = app.test_client()
    assert [post(client, WRONG).status_code for _ in range(BUDGET)] == [401] * BUDGET
    over = post(client, WRONG)
    assert over.status_code == 429
    assert over.content_type == "application/problem+json"
    assert over.get_json()["type"].endswith("too-many-failures")
    assert 0 < int(over.headers["Retry-After"]) <= 300
    # Refused before any work, a good signature included, until the window ends...
    assert post(client, secret).status_code == 429
    # ...while other addresses are not affected.
    assert post(client, secret, address="198.51.100.8").status_code == 202


def test_unknown_sources_count_as_failures(app: Flask) -> None:
    client = app.test_client()
    for n in range(BUDGET):
        assert post(client, WRONG, source=f"guess-{n}").status_code == 404
    assert post(client, WRONG, source="guess-last").status_code == 429


def test_a_wrong_api_key_counts_and_a_missing_one_does_not(app: Flask) -> None:
    client = app.test_client()
    for _ in range(BUDGET + 2):
        assert client.get("/api/contacts").status_code == 401
    wrong = {"Authorization": "Bearer crm_guess"}
    statuses = [client.get("/api/contacts", headers=wrong).status_code for _ in range(BUDGET + 1)]
    assert statuses == [401] * BUDGET + [429]


def test_the_budget_is_shared_by_every_web_process(database_url: str, committed_db: Engine) -> None:
    reason = redis_reason()
    if reason:
        unavailable("Redis", reason)
    shared = {"ratelimit_url": REDIS_URL, "ratelimit_prefix": f"test-{uuid.uuid4().hex}"}
    first, second = make_app(database_url, **shared), make_app(database_url, **shared)
    add_source(first)
    assert [post(first.test_client(), WRONG).status_code for _ in range(2)] == [401, 401]
    assert post(second.test_client(), WRONG).status_code == 401
    assert post(second.test_client(), WRONG).status_code == 429
    assert post(first.test_client(), WRONG).status_code == 429


def test_behind_a_trusted_proxy_each_forwarded_client_has_its_own_budget(
    database_url: str, committed_db: Engine
) -> None:
    app = make_app(database_url, trusted_proxy_hops=1)
    add_source(app)
    client = app.test_client()
    proxy = "10.0.0.2"
    for _ in range(BUDGET):
        assert post(client, WRONG, address=proxy, forwarded="203.0.113.5").status_code == 401
    assert post(client, WRONG, address=proxy, forwarded="203.0.113.5").status_code == 429
    assert post(client, WRONG, address=proxy, forwarded="203.0.113.6").status_code == 401


def test_without_a_trusted_proxy_a_forged_forwarded_for_changes_nothing(app: Flask) -> None:
    add_source(app)
    client = app.test_client()
    for n in range(BUDGET):
        assert post(client, WRONG, forwarded=f"203.0.113.{n}").status_code == 401
    assert post(client, WRONG, forwarded="203.0.113.99").status_code == 429


def test_an_unreachable_storage_refuses_nobody(database_url: str, committed_db: Engine) -> None:
    app = make_app(database_url, ratelimit_url=f"redis://127.0.0.1:{free_port()}/0")
    add_source(app)
    client = app.test_client()
    assert [post(client, WRONG).status_code for _ in range(BUDGET + 2)] == [401] * (BUDGET + 2)


def test_a_budget_of_zero_is_no_limit(database_url: str, committed_db: Engine) -> None:
    app = make_app(database_url, auth_failures_per_window=0)
    add_source(app)
    client = app.test_client()
    assert [post(client, WRONG).status_code for _ in range(BUDGET + 2)] == [401] * (BUDGET + 2)


@pytest.mark.parametrize(
    ("address", "key"),
    [
        ("198.51.100.7", "198.51.100.7"),
        ("2001:db8:1:2:aaaa::1", "2001:db8:1:2::/64"),
        ("2001:db8:1:2:ffff:ffff:ffff:ffff", "2001:db8:1:2::/64"),
        ("::ffff:198.51.100.7", "198.51.100.7"),
        (None, "unknown"),
    ],
)
def test_a_client_is_an_ipv4_address_or_an_ipv6_64(address: str | None, key: str) -> None:
    assert client_key(address) == key
