"""The Celery settings keep their promises to each other."""

from __future__ import annotations

import importlib

import pytest

import celeryconfig


@pytest.fixture
def redis_config(monkeypatch: pytest.MonkeyPatch):
    """celeryconfig as it is when the broker is Redis."""
    from crm_core.config import get_settings

    monkeypatch.setenv("CRM_BROKER_URL", "redis://127.0.0.1:6379/0")
    get_settings.cache_clear()
    yield importlib.reload(celeryconfig)
    monkeypatch.undo()
    get_settings.cache_clear()
    importlib.reload(celeryconfig)


def test_delivery_is_at_least_once(redis_config) -> None:
    assert redis_config.task_acks_late is True
    assert redis_config.task_reject_on_worker_lost is True
    assert redis_config.worker_prefetch_multiplier == 1


def test_visibility_timeout_outlasts_any_task_and_any_retry(redis_config) -> None:
    visibility = redis_config.broker_transport_options["visibility_timeout"]
    assert redis_config.task_soft_time_limit < redis_config.task_time_limit
    assert visibility > redis_config.task_time_limit + redis_config.crm_retry_backoff_max


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
