"""Events are published after the commit, off the request thread, and failures never spread."""

from __future__ import annotations

import threading
import time

import pytest
from flask import Flask

from tests.signed import fixture_bytes
from tests.webhooks.conftest import Sender
from webhooks.publisher import BackgroundPublisher


def test_an_accepted_event_is_published_once(app: Flask, sender: Sender) -> None:
    published: list[int] = []
    app.extensions["crm_publisher"] = BackgroundPublisher(published.extend)
    first = sender.post("leads", fixture_bytes("lead.json"), msg_id="m1").json["event_id"]
    sender.post("leads", fixture_bytes("lead.json"), msg_id="m1")
    sender.post("leads", b'{"email": 1}', msg_id="m2")
    assert app.extensions["crm_publisher"].drain()
    assert published == [first]


def test_a_failing_publish_does_not_stop_the_publisher() -> None:
    seen: list[int] = []

    def flaky(event_ids: list[int]) -> None:
        seen.extend(event_ids)
        if 1 in event_ids:
            raise RuntimeError("broker exploded")

    publisher = BackgroundPublisher(flaky, max_batch=1)
    publisher.submit(1)
    publisher.submit(2)
    assert publisher.drain()
    assert seen == [1, 2]


def test_what_queued_up_is_published_in_one_batch() -> None:
    batches: list[list[int]] = []
    first_call = threading.Event()
    release = threading.Event()

    def slow(event_ids: list[int]) -> None:
        batches.append(list(event_ids))
        first_call.set()
        release.wait(5)

    publisher = BackgroundPublisher(slow, max_batch=3)
    publisher.submit(0)
    assert first_call.wait(5)
    for event_id in range(1, 6):  # queued while the first batch is out
        publisher.submit(event_id)
    release.set()
    assert publisher.drain()
    assert batches == [[0], [1, 2, 3], [4, 5]]


def test_a_full_queue_drops_instead_of_blocking(caplog: pytest.LogCaptureFixture) -> None:
    release = threading.Event()
    publisher = BackgroundPublisher(lambda _ids: release.wait(5), capacity=1)
    for event_id in range(5):
        publisher.submit(event_id)
    release.set()
    assert publisher.drain()
    assert "left to the sweeper" in caplog.text


def test_a_quiet_publisher_publishes_at_once_and_then_batches_for_the_linger() -> None:
    batches: list[list[int]] = []
    first = threading.Event()

    def publish(ids: list[int]) -> None:
        batches.append(list(ids))
        first.set()

    publisher = BackgroundPublisher(publish, linger=1.0)
    started = time.monotonic()
    publisher.submit(0)
    assert first.wait(5)
    assert time.monotonic() - started < 0.5  # no linger before a quiet round
    for event_id in range(1, 5):  # arriving while the publisher lingers
        publisher.submit(event_id)
    assert publisher.drain()
    assert batches == [[0], [1, 2, 3, 4]]


def test_the_publisher_lingers_as_configured() -> None:
    from crm_core.config import Settings
    from webhooks.app import create_app

    app = create_app(
        Settings(
            database_url="sqlite://",
            broker_url="memory://",
            ratelimit_url="memory://",
            publish_linger_ms=5,
        )
    )
    assert app.extensions["crm_publisher"].linger == 0.005
