"""Real servers for tests: PostgreSQL, Redis, RabbitMQ, and how to ask for them.

With ``CI=true`` a missing server fails the test; elsewhere it is skipped
with a reason, so a laptop without PostgreSQL can still run the rest.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
POSTGRES_URL = os.environ.get(
    "CRM_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


def _redis_url() -> str:
    """Database 15, or one database per pytest-xdist worker (gw0 → 15, gw1 → 14, …)."""
    if os.environ.get("CRM_TEST_REDIS_URL"):
        return os.environ["CRM_TEST_REDIS_URL"]
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    return f"redis://127.0.0.1:6379/{15 - int(worker.removeprefix('gw')) % 8}"


REDIS_URL = _redis_url()
# The shared RabbitMQ; every test gets a virtual host of its own on it.
RABBITMQ_URL = os.environ.get("CRM_TEST_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672/")


def unavailable(what: str, why: str) -> None:
    """Fail in CI, skip elsewhere."""
    message = f"{what} is not available ({why})"
    if IN_CI:
        pytest.fail(f"{message}; CI=true requires it", pytrace=False)
    pytest.skip(f"{message}; set CI=true to make this a failure")


def postgres_reason() -> str | None:
    """``None`` when PostgreSQL answers at POSTGRES_URL, else why not."""
    engine = create_engine(POSTGRES_URL, connect_args={"connect_timeout": 3})
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:
        return str(exc).splitlines()[0]
    finally:
        engine.dispose()
    return None


def redis_reason(url: str = REDIS_URL) -> str | None:
    """``None`` when Redis answers PING at ``url``, else why not."""
    import redis

    try:
        redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2).ping()
    except Exception as exc:
        return str(exc).splitlines()[0]
    return None


def rabbitmq_reason(url: str = RABBITMQ_URL) -> str | None:
    """``None`` when RabbitMQ accepts an AMQP connection at ``url`` and
    ``rabbitmqctl`` (which makes the tests' virtual hosts) is there, else why not."""
    from kombu import Connection

    try:
        with Connection(url, connect_timeout=2) as conn:
            conn.ensure_connection(max_retries=1, timeout=3)
    except Exception as exc:
        return str(exc).splitlines()[0] or type(exc).__name__
    if shutil.which("rabbitmqctl") is None:
        return "rabbitmqctl is not installed"
    return None


def _rabbitmqctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", "-q", *args], check=True, capture_output=True, timeout=60)


def rabbitmq_vhost_create(name: str) -> None:
    """A virtual host on the shared RabbitMQ, open to the tests' user."""
    _rabbitmqctl("add_vhost", name)
    user = urlsplit(RABBITMQ_URL).username or "guest"
    _rabbitmqctl("set_permissions", "-p", name, user, ".*", ".*", ".*")


def rabbitmq_vhost_delete(name: str) -> None:
    """Delete a virtual host: its queues, their messages and its connections go with it."""
    _rabbitmqctl("delete_vhost", name)


@contextmanager
def scratch_rabbitmq_vhost(prefix: str = "crm-test") -> Iterator[str]:
    """A new virtual host on the shared RabbitMQ for the block (its queues die with it); its URL."""
    name = f"{prefix}-{uuid.uuid4().hex[:10]}"
    rabbitmq_vhost_create(name)
    try:
        yield RABBITMQ_URL.rstrip("/") + "/" + name
    finally:
        rabbitmq_vhost_delete(name)


@contextmanager
def scratch_postgres_database(prefix: str = "crm_test") -> Iterator[str]:
    """An empty PostgreSQL database for the duration of the block; its URL."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        yield make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
