"""The broker the integration tests run on: Redis and RabbitMQ, each test on both."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.processes import PrivateRabbitMQ, start_redis, stop
from tests.services import (
    RABBITMQ_URL,
    REDIS_URL,
    free_port,
    rabbitmq_reason,
    rabbitmq_vhost_create,
    rabbitmq_vhost_delete,
    redis_reason,
    scratch_rabbitmq_vhost,
    unavailable,
)

BROKERS = ("redis", "rabbitmq")


@dataclass(frozen=True)
class Broker:
    """A broker of the test's own: its kind and the settings a child process needs."""

    kind: str
    url: str
    key_prefix: str = ""

    @property
    def env(self) -> dict[str, str]:
        env = {"CRM_BROKER_URL": self.url}
        if self.key_prefix:
            env["CRM_BROKER_KEY_PREFIX"] = self.key_prefix
        return env


@pytest.fixture(params=BROKERS)
def broker(request: pytest.FixtureRequest) -> Iterator[Broker]:
    """Keys of our own on the shared Redis, or a virtual host of our own on the shared RabbitMQ.

    Skipped with the reason when the server does not answer; a failure with ``CI=true``.
    """
    if request.param == "redis":
        reason = redis_reason()
        if reason:
            unavailable("Redis", reason)
        # Our own keys on the shared Redis: no other run's messages, none left behind.
        yield Broker("redis", REDIS_URL, key_prefix=f"t-{uuid.uuid4().hex}:")
        return
    reason = rabbitmq_reason()
    if reason:
        unavailable("RabbitMQ", reason)
    with scratch_rabbitmq_vhost() as url:
        yield Broker("rabbitmq", url)


class LosableBroker:
    """A broker a test may take down and bring back.

    Redis: a private ``redis-server`` on a free port that keeps nothing, killed with SIGKILL
    and started again empty. RabbitMQ, by default: a virtual host of the test's own on the
    shared server, deleted (every queue, message and connection in it goes) and made again,
    the worst a broker can do. With ``node`` (a folder), RabbitMQ is a private node
    (``PrivateRabbitMQ``) killed with SIGKILL and booted again on its data, as a crashed
    server restarts.
    """

    def __init__(self, kind: str, *, node: Path | None = None) -> None:
        self.kind = kind
        self._redis: subprocess.Popen[bytes] | None = None
        self._port = free_port()
        self._vhost = f"crm-faults-{uuid.uuid4().hex[:10]}"
        self._vhost_exists = False
        self._node = PrivateRabbitMQ(node) if kind == "rabbitmq" and node is not None else None

    @property
    def url(self) -> str:
        if self.kind == "redis":
            return f"redis://127.0.0.1:{self._port}/0"
        if self._node is not None:
            return self._node.url
        return RABBITMQ_URL.rstrip("/") + "/" + self._vhost

    @property
    def env(self) -> dict[str, str]:
        return {"CRM_BROKER_URL": self.url}

    def start(self) -> None:
        if self.kind == "redis":
            self._redis = start_redis(self._port)
        elif self._node is not None:
            self._node.start()
        else:
            rabbitmq_vhost_create(self._vhost)
            self._vhost_exists = True

    def stop(self) -> None:
        """Down, and everything it held is gone."""
        if self.kind == "redis":
            if self._redis is not None:
                stop(self._redis, kill=True)
                self._redis = None
        elif self._node is not None:
            self._node.kill()
        elif self._vhost_exists:
            rabbitmq_vhost_delete(self._vhost)
            self._vhost_exists = False

    def restart(self) -> None:
        self.stop()
        self.start()


@pytest.fixture(params=BROKERS)
def losable_broker(request: pytest.FixtureRequest) -> Iterator[LosableBroker]:
    """A broker of the test's own that it may lose and bring back (see ``LosableBroker``)."""
    if request.param == "rabbitmq":
        reason = rabbitmq_reason()
        if reason:
            unavailable("RabbitMQ", reason)
    yield from _running(LosableBroker(request.param))


@pytest.fixture(params=BROKERS)
def restartable_broker(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LosableBroker]:
    """A broker the test may crash and restart: a private Redis, or a private RabbitMQ node
    killed with SIGKILL and booted again on its data."""
    node = tmp_path_factory.mktemp("rabbitmq") if request.param == "rabbitmq" else None
    yield from _running(LosableBroker(request.param, node=node))


def _running(broker: LosableBroker) -> Iterator[LosableBroker]:
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()
