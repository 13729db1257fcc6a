"""The Celery settings keep their promises to each other."""

from __future__ import annotations

import importlib

import pytest

import celeryconfig


def _config_for(monkeypatch: pytest.MonkeyPatch, broker_url: str):  # type: ignore[no-untyped-def]
    """celeryconfig as it is loaded with ``broker_url``; restored afterwards."""
    from crm_core.config import get_settings

    monkeypatch.setenv("CRM_BROKER_URL", broker_url)
    get_settings.cache_clear()
    yield importlib.reload(celeryconfig)
    monkeypatch.undo()
    get_settings.cache_clear()
    importlib.reload(celeryconfig)


@pytest.fixture
def redis_config(monkeypatch: pytest.MonkeyPatch):
    """celeryconfig as it is when the broker is Redis."""
    yield from _config_for(monkeypatch, "redis://127.0.0.1:6379/0")


@pytest.fixture
def rabbitmq_config(monkeypatch: pytest.MonkeyPatch):
    """celeryconfig as it is when the broker is RabbitMQ."""
    yield from _config_for(monkeypatch, "amqp://guest:guest@127.0.0.1:5672/crm")


def test_delivery_is_at_least_once(redis_config) -> None:
    assert redis_config.task_acks_late is True
    assert redis_config.task_reject_on_worker_lost is True
    assert redis_config.worker_prefetch_multiplier == 1


def test_visibility_timeout_outlasts_any_task_and_any_retry(redis_config) -> None:
    visibility = redis_config.broker_transport_options["visibility_timeout"]
    assert redis_config.task_soft_time_limit < redis_config.task_time_limit
    assert visibility > redis_config.task_time_limit + redis_config.crm_retry_backoff_max
    assert visibility > redis_config.crm_longest_unacked_seconds


def test_publishing_retries_are_bounded(redis_config) -> None:
    policy = redis_config.task_publish_retry_policy
    assert 0 < policy["max_retries"] <= 5
    worst_wait = sum(
        min(policy["interval_start"] + n * policy["interval_step"], policy["interval_max"])
        for n in range(policy["max_retries"])
    )
    connect = redis_config.broker_transport_options["socket_connect_timeout"]
    # A webhook request must not hang on a dead broker for long.
    assert worst_wait + (policy["max_retries"] + 1) * connect <= 10


def test_json_only_and_results_ignored() -> None:
    assert celeryconfig.task_serializer == "json"
    assert celeryconfig.accept_content == ["json"]
    assert celeryconfig.task_ignore_result is True


def test_every_scheduled_task_exists_and_routes_to_a_known_queue() -> None:
    from workers.app import celery_app

    # Every module the app includes, imported to register its tasks as a worker does.
    for module in celery_app.conf.include:
        importlib.import_module(module)
    queues = set(celery_app.amqp.queues)
    for entry in celeryconfig.beat_schedule.values():
        assert entry["task"] in celery_app.tasks
        route = celery_app.amqp.router.route({}, entry["task"])
        assert route["queue"].name in queues


def test_embedded_broker_gets_no_redis_options() -> None:
    # kombu's SQLAlchemy transport passes its options to create_engine().
    from crm_core.config import Settings

    assert Settings(broker_url="").broker_is_embedded
    assert not Settings(broker_url="redis://x").broker_is_embedded


def test_the_embedded_brokers_engine_hides_message_values(monkeypatch: pytest.MonkeyPatch) -> None:
    from crm_core.config import get_settings

    monkeypatch.setenv("CRM_BROKER_URL", "")
    get_settings.cache_clear()
    try:
        embedded = importlib.reload(celeryconfig)
        assert embedded.broker_transport_options == {"hide_parameters": True}
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()
        importlib.reload(celeryconfig)


@pytest.mark.parametrize(
    ("url", "kind"),
    [
        ("redis://h:6379/0", "redis"),
        ("rediss://h:6380/0", "redis"),
        ("amqp://u:p@h:5672/v", "rabbitmq"),
        ("amqps://u:p@h:5671/v", "rabbitmq"),
        ("pyamqp://h//", "rabbitmq"),
        ("sqla+sqlite:///var/broker.sqlite3", "embedded"),
        ("memory://", "memory"),
    ],
)
def test_the_broker_kind_comes_from_the_scheme(url: str, kind: str) -> None:
    assert celeryconfig.broker_kind(url) == kind


def test_rabbitmq_has_no_visibility_timeout_and_confirms_every_publish(rabbitmq_config) -> None:
    options = rabbitmq_config.broker_transport_options
    assert options == {"confirm_publish": True}
    assert "visibility_timeout" not in options
    # Delivery stays at least once: acks late, rejected back to the queue on a lost worker.
    assert rabbitmq_config.task_acks_late is True
    assert rabbitmq_config.task_reject_on_worker_lost is True


def test_rabbitmq_queues_are_quorum_queues_behind_topic_exchanges(rabbitmq_config) -> None:
    queues = {queue.name: queue for queue in rabbitmq_config.task_queues}
    assert set(queues) == set(rabbitmq_config.QUEUE_NAMES)
    for name, queue in queues.items():
        assert queue.queue_arguments == {"x-queue-type": "quorum"}
        assert queue.durable
        # Native delayed delivery (countdowns) routes through topic exchanges only.
        assert (queue.exchange.name, queue.exchange.type) == (name, "topic")
        assert queue.routing_key == name
    assert rabbitmq_config.task_default_queue_type == "quorum"
    assert rabbitmq_config.worker_detect_quorum_queues is True


def test_redis_keeps_direct_exchanges_and_classic_queues(redis_config) -> None:
    for queue in redis_config.task_queues:
        assert queue.exchange.type == "direct"
        assert not queue.queue_arguments
    assert redis_config.task_default_queue_type == "classic"
    assert redis_config.task_default_exchange_type == "direct"


def test_the_longest_unacked_wait_is_what_the_consumer_timeout_must_exceed(
    rabbitmq_config,
) -> None:
    # RabbitMQ's own default consumer_timeout is 30 minutes (1,800,000 ms).
    limit, backoff = rabbitmq_config.task_time_limit, rabbitmq_config.crm_retry_backoff_max
    # Waiting behind a running task then running, or waiting out a countdown then running.
    assert rabbitmq_config.crm_longest_unacked_seconds >= 2 * limit
    assert rabbitmq_config.crm_longest_unacked_seconds >= limit + backoff
    assert rabbitmq_config.crm_longest_unacked_seconds < 1800


def test_a_redis_key_prefix_is_passed_on_and_never_to_rabbitmq() -> None:
    redis = celeryconfig.transport_options("redis://h/0", key_prefix="staging:")
    rabbit = celeryconfig.transport_options("amqp://h//", key_prefix="staging:")
    assert redis["global_keyprefix"] == "staging:"
    assert "global_keyprefix" not in rabbit
