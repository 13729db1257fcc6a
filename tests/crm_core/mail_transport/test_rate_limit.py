"""The token bucket spaces messages at the configured rate (on a fake clock: no real waiting)."""

from __future__ import annotations

import pytest

from crm_core.mail_transport.rate_limit import RateLimitedBackend, TokenBucket


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_a_burst_is_spaced_at_the_rate() -> None:
    clock = FakeClock()
    bucket = TokenBucket(4, clock=clock, sleep=clock.sleep)
    for _ in range(9):
        bucket.acquire()
    # The first is free; each of the other eight waits a quarter second.
    assert clock.slept == [0.25] * 8
    assert clock.now == pytest.approx(1002.0)


def test_idle_time_refills_up_to_the_capacity_only() -> None:
    clock = FakeClock()
    bucket = TokenBucket(2, capacity=3, clock=clock, sleep=clock.sleep)
    for _ in range(3):
        bucket.acquire()
    assert clock.slept == []
    clock.now += 100  # a long pause earns at most `capacity` tokens
    for _ in range(4):
        bucket.acquire()
    assert clock.slept == [0.5]


def test_slow_senders_never_wait() -> None:
    clock = FakeClock()
    bucket = TokenBucket(10, clock=clock, sleep=clock.sleep)
    for _ in range(5):
        bucket.acquire()
        clock.now += 0.2
    assert clock.slept == []


@pytest.mark.parametrize(("rate", "capacity"), [(0, 1), (-1, 1), (1, 0.5)])
def test_a_bucket_needs_a_positive_rate(rate: float, capacity: float) -> None:
    with pytest.raises(ValueError, match="rate"):
        TokenBucket(rate, capacity=capacity)


class CountingBackend:
    def __init__(self) -> None:
        self.events: list[str] = []

    def open(self) -> None:
        self.events.append("open")

    def send(self, message: object, *, idempotency_key: str | None = None) -> str:
        self.events.append(f"send {idempotency_key}")
        return "id"

    def close(self) -> None:
        self.events.append("close")

    def __enter__(self) -> CountingBackend:
        return self

    def __exit__(self, *exc: object) -> None:
        pass


def test_the_limited_backend_waits_then_delegates() -> None:
    clock = FakeClock()
    inner = CountingBackend()
    limited = RateLimitedBackend(inner, TokenBucket(2, clock=clock, sleep=clock.sleep))
    with limited:
        for key in ("a", "b", "c"):
            assert limited.send(object(), idempotency_key=key) == "id"  # type: ignore[arg-type]
    assert inner.events == ["open", "send a", "send b", "send c", "close"]
    assert clock.slept == [0.5, 0.5]
