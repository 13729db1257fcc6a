"""How long to wait before trying again: one formula for every retry in the platform."""

from __future__ import annotations

import random
from collections.abc import Callable


def backoff_delay(
    attempts: int,
    *,
    base: float = 2.0,
    cap: float = 600.0,
    jitter: Callable[[], float] = random.random,
) -> float:
    """Seconds before attempt ``attempts + 1``: exponential from ``base``, capped at ``cap``.

    Equal jitter: half of the wait is fixed, half random (``jitter()`` in [0, 1)),
    so retries of many items that failed together spread out but never come early.
    """
    ceiling = min(cap, base * 2 ** max(attempts - 1, 0))
    return ceiling / 2 + jitter() * ceiling / 2
