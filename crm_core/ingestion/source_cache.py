"""A short-lived, bounded cache of source credentials for the hot intake path.

Looking a source up costs a database round trip on every webhook. Cached for a
few seconds, a disabled source or a rotated-out secret can still be honoured
for at most that long; a signature that fails against cached secrets is
checked again against fresh ones, so a just-rotated secret works at once.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict

from crm_core.ingestion.services import SourceCredentials


class SourceCache:
    """``name → SourceCredentials`` for ``ttl`` seconds, at most ``size`` names (LRU)."""

    def __init__(self, *, ttl: float, size: int = 1024) -> None:
        self.ttl = ttl
        self.size = size
        self._entries: OrderedDict[str, tuple[float, SourceCredentials]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, name: str) -> SourceCredentials | None:
        """The cached credentials of ``name``, or None when absent or stale."""
        if self.ttl <= 0:
            return None
        with self._lock:
            entry = self._entries.get(name)
            if entry is None or entry[0] < time.monotonic():
                return None
            self._entries.move_to_end(name)
            return entry[1]

    def put(self, name: str, credentials: SourceCredentials) -> None:
        """Remember ``credentials`` for ``ttl`` seconds (unknown sources are never cached)."""
        if self.ttl <= 0:
            return
        with self._lock:
            self._entries[name] = (time.monotonic() + self.ttl, credentials)
            self._entries.move_to_end(name)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)
