"""The intake's source cache: short-lived, bounded, and off when its TTL is 0."""

from __future__ import annotations

import time

from crm_core.ingestion.services import SourceCredentials
from crm_core.ingestion.source_cache import SourceCache


def creds(n: int) -> SourceCredentials:
    return SourceCredentials(n, True, None, [f"whsec_{n}"])


def test_entries_expire_after_their_ttl() -> None:
    cache = SourceCache(ttl=0.05)
    cache.put("shop", creds(1))
    assert cache.get("shop") == creds(1)
    time.sleep(0.06)
    assert cache.get("shop") is None


def test_the_least_recently_used_name_goes_first() -> None:
    cache = SourceCache(ttl=60, size=2)
    cache.put("a", creds(1))
    cache.put("b", creds(2))
    assert cache.get("a") == creds(1)
    cache.put("c", creds(3))
    assert (cache.get("a"), cache.get("b"), cache.get("c")) == (creds(1), None, creds(3))


def test_a_zero_ttl_caches_nothing() -> None:
    cache = SourceCache(ttl=0)
    cache.put("shop", creds(1))
    assert cache.get("shop") is None
