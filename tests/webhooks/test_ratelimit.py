"""The intake's rate limiter: never more than the budget, little less, few storage round trips."""

from __future__ import annotations

import random
import time
from typing import Any

import pytest
from limits.storage import MemoryStorage

from webhooks import ratelimit
from webhooks.ratelimit import RateLimiter, block_size


class CountingStorage(MemoryStorage):
    """Memory storage that counts the increments asked of it (the round trips to Redis)."""

    def __init__(self) -> None:
        super().__init__()
        self.increments = 0

    def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        self.increments += 1
        return super().incr(key, expiry, amount)


class BrokenStorage(MemoryStorage):
    def incr(self, *args: Any, **kwargs: Any) -> int:
        raise ConnectionError("storage is down")


def limiter(storage: MemoryStorage, *, per_minute: int = 0, window: int = 60) -> RateLimiter:
    return RateLimiter(storage, default_per_minute=per_minute, prefix="t", window_seconds=window)


def admitted(limiter_: RateLimiter, hits: int, *, budget: int | None = None) -> int:
    return sum(limiter_.retry_after(1, budget) is None for _ in range(hits))


@pytest.mark.parametrize(
    ("budget", "block"), [(1, 1), (199, 1), (200, 2), (1000, 10), (6000, 60), (10**8, 64)]
)
def test_a_block_is_one_percent_of_the_budget_within_1_and_64(budget: int, block: int) -> None:
    assert block_size(budget) == block


def test_a_small_budget_is_counted_exactly_request_by_request() -> None:
    storage = CountingStorage()
    limited = limiter(storage)
    assert [limited.retry_after(1, 3) for _ in range(3)] == [None, None, None]
    wait = limited.retry_after(1, 3)
    assert wait is not None
    assert 1 <= wait <= 60
    assert storage.increments == 4


def test_one_process_gets_exactly_its_budget_with_one_round_trip_per_block() -> None:
    storage = CountingStorage()
    limited = limiter(storage)
    assert admitted(limited, 1500, budget=1000) == 1000
    assert storage.increments == 100 + 1  # 100 blocks of 10, then one refusal...
    assert admitted(limited, 50, budget=1000) == 0
    assert storage.increments == 101  # ...which is remembered until the window ends


@pytest.mark.parametrize("seed", range(5))
def test_processes_sharing_a_budget_never_exceed_it_and_lose_under_a_block_each(
    seed: int,
) -> None:
    storage = MemoryStorage()
    processes = [limiter(storage) for _ in range(3)]
    rng = random.Random(seed)
    allowed = 0
    for _ in range(3000):
        allowed += rng.choice(processes).retry_after(1, 1000) is None
    block = block_size(1000)
    assert 1000 - len(processes) * (block - 1) <= allowed <= 1000


def test_the_default_budget_applies_when_the_source_has_none_and_zero_is_unlimited() -> None:
    assert admitted(limiter(MemoryStorage(), per_minute=2), 5) == 2
    assert admitted(limiter(MemoryStorage(), per_minute=0), 500) == 500
    assert admitted(limiter(MemoryStorage(), per_minute=2), 5, budget=0) == 5


def test_a_changed_budget_takes_effect_at_once() -> None:
    limited = limiter(MemoryStorage())
    assert admitted(limited, 3, budget=2) == 2
    # A new budget is a new count (as in ``limits``, the amount is part of the key).
    assert admitted(limited, 5, budget=4) == 4


def test_unspent_reservations_end_with_their_window() -> None:
    storage = CountingStorage()
    limited = limiter(storage, window=1)
    assert admitted(limited, 250, budget=300) == 250  # holds 50 of the 300 reserved
    time.sleep(1.1)
    assert admitted(limited, 300, budget=300) == 300  # a new window: its full budget again
    assert storage.increments == 84 + 100  # blocks of 3: ceil(250 / 3), then 300 / 3


def test_a_refused_window_reopens_when_it_ends() -> None:
    limited = limiter(MemoryStorage(), window=1)
    assert admitted(limited, 3, budget=2) == 2
    assert limited.retry_after(1, 2) == 1
    time.sleep(1.1)
    assert limited.retry_after(1, 2) is None


def test_an_unreachable_storage_admits_everything(caplog: pytest.LogCaptureFixture) -> None:
    assert admitted(limiter(BrokenStorage()), 5, budget=1) == 5
    assert "rate limit storage unavailable" in caplog.text


def test_names_of_their_own_have_budgets_of_their_own_and_spent_ones_are_forgotten(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(ratelimit, "MAX_RESERVATIONS", 3)
    limiter = RateLimiter(MemoryStorage(), default_per_minute=100, prefix="t", window_seconds=60)
    assert limiter.retry_after_for("client:a", 1) is None
    assert limiter.retry_after_for("client:a", 1) is not None
    assert limiter.retry_after_for("client:b", 1) is None
    for n in range(10):
        limiter.retry_after_for(f"client:{n}", 1)
    # Only windows still refusing (or holding tokens) are remembered: the table stays small,
    # and the refused name stays refused.
    assert len(limiter._reservations) <= 3
    assert "t:client:a" in limiter._reservations
    assert limiter.retry_after_for("client:a", 1) is not None
