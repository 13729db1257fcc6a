"""Failed sign-ins counted per account and per client address, in shared storage (``limits``).

A moving window: an account with ``per_account`` failures in the last ``window_seconds``
is refused until the oldest of them leaves the window, whatever the password; so is every
account tried from an address with ``per_address`` failures. Counting in the rate-limit
storage (Redis in production) makes the budget shared by every web process. A success
clears the account's count (not the address's: one right password must not buy an
address a fresh round of guesses at other accounts).
"""

from __future__ import annotations

import math
import time

from limits import RateLimitItem, RateLimitItemPerSecond
from limits.storage import Storage, storage_from_string
from limits.strategies import MovingWindowRateLimiter

_REDIS_OPTIONS = {"socket_timeout": 0.5, "socket_connect_timeout": 0.5}


class LoginThrottle:
    """Counts failed sign-ins and says how long an account or an address must wait."""

    def __init__(
        self,
        storage: Storage,
        *,
        prefix: str,
        per_account: int,
        per_address: int,
        window_seconds: int,
    ) -> None:
        self._limiter = MovingWindowRateLimiter(storage)
        self._prefix = prefix
        self._account: RateLimitItem = RateLimitItemPerSecond(per_account, window_seconds)
        self._address: RateLimitItem = RateLimitItemPerSecond(per_address, window_seconds)

    @classmethod
    def from_url(
        cls, url: str, *, prefix: str, per_account: int, per_address: int, window_seconds: int
    ) -> LoginThrottle:
        """A throttle on the ``limits`` storage at ``url`` (``redis://…`` or ``memory://``)."""
        options = _REDIS_OPTIONS if url.startswith(("redis://", "rediss://")) else {}
        storage = storage_from_string(url, **options)
        assert isinstance(storage, Storage)  # a synchronous URL gives a synchronous storage
        return cls(
            storage,
            prefix=prefix,
            per_account=per_account,
            per_address=per_address,
            window_seconds=window_seconds,
        )

    def _keys(self, email: str, address: str | None) -> list[tuple[RateLimitItem, tuple[str, ...]]]:
        keys: list[tuple[RateLimitItem, tuple[str, ...]]] = [
            (self._account, (self._prefix, "login-account", email))
        ]
        if address:
            keys.append((self._address, (self._prefix, "login-address", address)))
        return keys

    def retry_after(self, *, email: str, address: str | None) -> int | None:
        """Seconds to wait before this account may try again from ``address``; None: go ahead."""
        waits = []
        for item, ids in self._keys(email, address):
            if not self._limiter.test(item, *ids):
                reset = self._limiter.get_window_stats(item, *ids).reset_time
                waits.append(max(1, math.ceil(reset - time.time())))
        return max(waits) if waits else None

    def failed(self, *, email: str, address: str | None) -> None:
        """Count one failed sign-in against the account and the address."""
        for item, ids in self._keys(email, address):
            self._limiter.hit(item, *ids)

    def succeeded(self, *, email: str) -> None:
        """Forget the account's failures after a sign-in with the right password."""
        self._limiter.clear(self._account, self._prefix, "login-account", email)
