"""The one backoff formula: exponential, capped, half fixed and half random."""

from __future__ import annotations

import random

from crm_core.backoff import backoff_delay


def test_backoff_grows_exponentially_with_jitter_and_a_cap() -> None:
    rng = random.Random(1)
    for attempts, ceiling in [(1, 2), (2, 4), (3, 8), (10, 600), (40, 600)]:
        delays = {backoff_delay(attempts, cap=600, jitter=rng.random) for _ in range(20)}
        assert all(ceiling / 2 <= d <= ceiling for d in delays)
        assert len(delays) > 1


def test_backoff_bounds_follow_the_base_and_the_cap() -> None:
    low = [backoff_delay(n, base=2, cap=60, jitter=lambda: 0.0) for n in range(1, 9)]
    high = [backoff_delay(n, base=2, cap=60, jitter=lambda: 1.0) for n in range(1, 9)]
    assert low == [1, 2, 4, 8, 16, 30, 30, 30]
    assert high == [2, 4, 8, 16, 32, 60, 60, 60]
