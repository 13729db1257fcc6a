"""RabbitMQ as the platform uses it: quorum queues, publisher confirms, a consumer timeout
longer than any message stays unacknowledged. Real server, a virtual host per test."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import amqp
import pytest
from kombu import Connection, Exchange, Queue

import celeryconfig
from crm_core import migrate
from tests.processes import celery_worker, service_env, wait_until
from tests.services import (
    rabbitmq_reason,
    scratch_postgres_database,
    scratch_rabbitmq_vhost,
    unavailable,
)

pytestmark = pytest.mark.slow


@pytest.fixture
def vhost_url() -> Iterator[str]:
    reason = rabbitmq_reason()
    if reason:
        unavailable("RabbitMQ", reason)
    with scratch_rabbitmq_vhost() as url:
        yield url


def _queue_types(vhost_url: str) -> dict[str, str]:
    vhost = vhost_url.rsplit("/", 1)[-1]
    listing = subprocess.run(
        ["rabbitmqctl", "-q", "list_queues", "-p", vhost, "--no-table-headers", "name", "type"],
        check=True, capture_output=True, text=True, timeout=60,
    ).stdout  # fmt: skip
    return dict(line.split("\t") for line in listing.splitlines() if "\t" in line)


def test_a_worker_declares_quorum_queues_for_every_kind_of_work(
    postgres_available: None, vhost_url: str, tmp_path: Path
) -> None:
    with scratch_postgres_database("crm_rabbit") as database:
        migrate.upgrade(database)
        env = service_env(
            CRM_DATABASE_URL=database, CRM_BROKER_URL=vhost_url, CRM_VAR_DIR=str(tmp_path)
        )
        with celery_worker(env, log_path=tmp_path / "worker.log"):
            # The delay queues are declared after the work queues: wait for both.
            types = wait_until(
                lambda: (
                    (t := _queue_types(vhost_url)).keys() >= set(celeryconfig.QUEUE_NAMES)
                    and any(name.startswith("celery_delayed_") for name in t)
                    and t
                ),
                timeout=60,
                what="the worker's queues and delay queues",
                interval=0.5,
            )
    assert {types[name] for name in celeryconfig.QUEUE_NAMES} == {"quorum"}
    # Countdowns (retries) wait in RabbitMQ's delay queues, not unacknowledged in a worker.
    assert any(name.startswith("celery_delayed_") for name in types)


def test_a_publish_the_broker_refuses_raises_instead_of_vanishing(vhost_url: str) -> None:
    # A queue that takes nothing: RabbitMQ refuses (nacks) every publish to it. (Classic:
    # a quorum queue checks its length after the fact and lets one more in.)
    full = Queue(
        "full",
        Exchange("full", type="direct"),
        routing_key="full",
        queue_arguments={
            "x-queue-type": "classic",
            "x-max-length": 0,
            "x-overflow": "reject-publish",
        },
    )
    options = celeryconfig.transport_options(vhost_url)
    with Connection(vhost_url, transport_options=options) as conn:
        producer = conn.Producer()
        full.declare(channel=producer.channel)
        with pytest.raises(amqp.exceptions.MessageNacked):
            producer.publish({"id": 2}, exchange=full.exchange, routing_key="full")
    # Without confirms the same publish returns as if all went well, and the message is lost.
    with Connection(vhost_url) as conn:
        conn.Producer().publish({"id": 3}, exchange=full.exchange, routing_key="full")
        _, depth, _ = full.bind(conn.default_channel).queue_declare(passive=True)
    assert depth == 0


def test_the_servers_consumer_timeout_outlasts_any_unacknowledged_message(vhost_url: str) -> None:
    answer = subprocess.run(
        ["rabbitmqctl", "-q", "eval", "application:get_env(rabbit, consumer_timeout)."],
        check=True, capture_output=True, text=True, timeout=60,
    ).stdout.strip()  # fmt: skip
    longest_unacked = celeryconfig.crm_longest_unacked_seconds  # with the default settings
    if answer == "undefined":
        return  # no timeout at all
    milliseconds = int(answer.removeprefix("{ok,").removesuffix("}"))
    assert milliseconds / 1000 > longest_unacked, (
        f"RabbitMQ's consumer_timeout ({milliseconds} ms) must exceed the longest a message "
        f"stays unacknowledged ({longest_unacked} s): see docs/operations/brokers.md"
    )
