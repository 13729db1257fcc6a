"""Outbound HTTP to an address resolved once, with bounded answers.

Resolving a host name to check where it points, then letting ``requests``
resolve it again to connect, leaves a window: a name with a TTL of 0 can
answer a public address to the check and ``169.254.169.254`` to the connect
(DNS rebinding). A ``PinnedSession`` closes it: the name is resolved once, by
the caller, and every request goes to that address, while the ``Host``
header, TLS SNI and the certificate check still use the name. The proxy
settings of the environment are ignored, since a proxy would resolve the name
again.

Answers are read only as far as needed: ``read_capped`` takes at most
``MAX_RESPONSE_BYTES`` of a body (requests are sent with ``stream=True``),
so a receiver cannot fill the worker's memory. ``retry_after_seconds`` reads a
``Retry-After`` header as RFC 9110 defines it.
"""

from __future__ import annotations

import datetime as dt
import socket
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import requests
from requests.adapters import HTTPAdapter

MAX_RESPONSE_BYTES = 64 * 1024

Resolver = Callable[[str, int], list[str]]


def resolve(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to, in the order the system prefers them."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


@dataclass(frozen=True)
class Origin:
    """The scheme, host and port of a URL: what a pinned session may talk to."""

    scheme: str
    host: str
    port: int

    @classmethod
    def of(cls, url: str) -> Origin:
        """The origin of an http(s) URL; ``ValueError`` for anything else."""
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {url}")
        return cls(scheme, parts.hostname, parts.port or (443 if scheme == "https" else 80))

    @property
    def host_header(self) -> str:
        """The ``Host`` header for this origin (the port only when not the scheme's own)."""
        host = _bracketed(self.host)
        default = 443 if self.scheme == "https" else 80
        return host if self.port == default else f"{host}:{self.port}"


class PinnedSession(requests.Session):
    """A ``requests`` session that sends requests for ``origin`` to ``address``, and no others."""

    def __init__(self, origin: Origin, address: str) -> None:
        super().__init__()
        self.origin = origin
        self.address = address
        self.trust_env = False  # no proxy from the environment: it would resolve the name
        self.mount("https://", _NamedTlsAdapter(origin.host))

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        """Send to the pinned address a request for a URL of the pinned origin."""
        url = request.url or ""
        if Origin.of(url) != self.origin:
            raise ValueError(f"{url} is not on {self.origin.host}; this session is pinned")
        parts = urlsplit(url)
        netloc = f"{_bracketed(self.address)}:{self.origin.port}"
        request.url = urlunsplit((parts.scheme, netloc, parts.path, parts.query, ""))
        request.headers["Host"] = self.origin.host_header
        return super().send(request, **kwargs)


def pinned_session(url: str, *, resolver: Resolver = resolve) -> PinnedSession:
    """A session pinned to the first address ``url``'s host resolves to.

    ``ConnectionError`` when the name does not resolve.
    """
    origin = Origin.of(url)
    try:
        addresses = resolver(origin.host, origin.port)
    except OSError as exc:
        raise ConnectionError(f"cannot resolve {origin.host}: {exc}") from exc
    if not addresses:
        raise ConnectionError(f"cannot resolve {origin.host}: no address")
    return PinnedSession(origin, addresses[0])


def read_capped(response: requests.Response, limit: int = MAX_RESPONSE_BYTES) -> bytes:
    """At most ``limit`` bytes of a streamed answer's (decoded) body; the rest is never read.

    The response is closed; a broken or slow answer raises ``requests``' own errors.
    """
    body = bytearray()
    try:
        for chunk in response.iter_content(chunk_size=16 * 1024):
            body += chunk
            if len(body) >= limit:
                break
    finally:
        response.close()
    return bytes(body[:limit])


def retry_after_seconds(value: str | None, *, now: dt.datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` value (delay-seconds or an HTTP date); ``None``.

    RFC 9110 dates are in UTC: one written without a zone (the obsolete asctime
    form, or ``-0000``) is read as UTC, not refused and not local time.
    """
    text = (value or "").strip()
    if not text:
        return None
    if text.isascii() and text.isdigit():
        return float(text)
    try:
        moment = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return max(0.0, (moment - (now or dt.datetime.now(dt.UTC))).total_seconds())


class _NamedTlsAdapter(HTTPAdapter):
    """TLS to an address, with SNI and the certificate check done for the host name."""

    def __init__(self, hostname: str) -> None:
        self._hostname = hostname  # before super().__init__, which builds the pool manager
        super().__init__()

    def init_poolmanager(
        self, connections: int, maxsize: int, block: bool = False, **pool_kwargs: Any
    ) -> None:
        pool_kwargs.update(server_hostname=self._hostname, assert_hostname=self._hostname)
        super().init_poolmanager(connections, maxsize, block, **pool_kwargs)


def _bracketed(host: str) -> str:
    """An IPv6 address in brackets (its zone, if any, escaped) as URLs and ``Host`` want it."""
    return f"[{host.replace('%', '%25')}]" if ":" in host else host
