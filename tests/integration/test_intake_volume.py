"""On PostgreSQL and Redis: every signed post is one row, and racing redeliveries are one event."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from flask import Flask
from sqlalchemy import func, select

from crm_core import migrate
from crm_core.config import Settings
from crm_core.ingestion import services
from crm_core.ingestion.models import InboxEvent
from tests.services import REDIS_URL, redis_reason, scratch_postgres_database, unavailable
from tests.signed import signed_headers
from webhooks.app import create_app

pytestmark = [pytest.mark.postgres, pytest.mark.redis]


@pytest.fixture(scope="module")
def postgres_app() -> Iterator[tuple[Flask, str]]:
    """The web app on a private PostgreSQL database, rate-limited on the real Redis."""
    reason = redis_reason()
    if reason:
        unavailable("Redis", reason)
    with scratch_postgres_database("crm_intake_volume") as url:
        migrate.upgrade(url)
        settings = Settings(
            database_url=url,
            broker_url="memory://",
            ratelimit_url=REDIS_URL,
            ratelimit_prefix=f"test-{uuid.uuid4().hex}",
            db_pool_size=20,
        )
        app = create_app(settings)
        with app.extensions["crm"].sessions.begin() as session:
            _, secret = services.create_source(session, name="shop")
        yield app, secret
        app.extensions["crm"].engine.dispose()


def _count(app: Flask, **where: str) -> int:
    query = select(func.count()).select_from(InboxEvent).filter_by(**where)
    with app.extensions["crm"].sessions() as session:
        return session.scalar(query) or 0


def _post(app: Flask, secret: str, body: bytes, msg_id: str) -> tuple[int, int]:
    response = app.test_client().post(
        "/webhooks/shop/leads", data=body, headers=signed_headers(secret, body, msg_id=msg_id)
    )
    return response.status_code, response.json["event_id"]


def test_two_thousand_signed_posts_make_two_thousand_rows(postgres_app) -> None:  # type: ignore[no-untyped-def]
    app, secret = postgres_app
    run = uuid.uuid4().hex[:8]

    def post(n: int) -> int:
        body = f'{{"email": "lead{n}@example.com"}}'.encode()
        return _post(app, secret, body, f"bulk-{run}-{n}")[0]

    with ThreadPoolExecutor(max_workers=16) as pool:
        codes = list(pool.map(post, range(2000)))
    assert codes == [202] * 2000
    assert _count(app) >= 2000
    with app.extensions["crm"].sessions() as session:
        mine = session.scalar(
            select(func.count())
            .select_from(InboxEvent)
            .where(InboxEvent.webhook_id.like(f"bulk-{run}-%"))
        )
    assert mine == 2000


def test_fifty_concurrent_posts_of_one_webhook_id_make_one_event(postgres_app) -> None:  # type: ignore[no-untyped-def]
    app, secret = postgres_app
    msg_id = f"race-{uuid.uuid4().hex}"
    body = b'{"email": "racer@example.com"}'
    start = threading.Barrier(50)

    def post(_: int) -> tuple[int, int]:
        start.wait()
        return _post(app, secret, body, msg_id)

    with ThreadPoolExecutor(max_workers=50) as pool:
        results = list(pool.map(post, range(50)))
    codes = sorted(code for code, _ in results)
    assert codes == [200] * 49 + [202]
    assert len({event_id for _, event_id in results}) == 1
    assert _count(app, webhook_id=msg_id) == 1


def test_the_rate_limit_lives_in_redis(postgres_app) -> None:  # type: ignore[no-untyped-def]
    app, _ = postgres_app
    with app.extensions["crm"].sessions.begin() as session:
        _, secret = services.create_source(session, name="tiny", rate_limit_per_minute=3)
    body = b'{"email": "a@example.com"}'
    client = app.test_client()
    codes = []
    for n in range(4):
        headers = signed_headers(secret, body, msg_id=f"rl-{uuid.uuid4().hex}-{n}")
        codes.append(client.post("/webhooks/tiny/leads", data=body, headers=headers).status_code)
    assert codes == [202, 202, 202, 429]
    # A second app (another web process) shares the budget through Redis.
    other = create_app(app.extensions["crm"].settings)
    headers = signed_headers(secret, body, msg_id=f"rl-{uuid.uuid4().hex}")
    response = other.test_client().post("/webhooks/tiny/leads", data=body, headers=headers)
    assert response.status_code == 429
    assert int(response.headers["Retry-After"]) >= 1
    other.extensions["crm"].engine.dispose()


def test_web_processes_sharing_a_large_budget_in_redis_never_exceed_it() -> None:
    """Reserving in blocks, concurrent processes admit at most the budget, and nearly all of it."""
    from limits.storage import storage_from_string

    from webhooks.ratelimit import RateLimiter, block_size

    reason = redis_reason()
    if reason:
        unavailable("Redis", reason)
    prefix = f"test-{uuid.uuid4().hex}"
    processes = [
        RateLimiter(storage_from_string(REDIS_URL), default_per_minute=0, prefix=prefix)
        for _ in range(3)
    ]
    budget = 2000

    def hits(limiter: RateLimiter) -> int:
        return sum(limiter.retry_after(7, budget) is None for _ in range(1000))

    with ThreadPoolExecutor(max_workers=6) as pool:  # two threads in each "process"
        allowed = sum(pool.map(hits, processes * 2))
    assert budget - len(processes) * (block_size(budget) - 1) <= allowed <= budget
