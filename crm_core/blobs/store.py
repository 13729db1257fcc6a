"""What a blob store is: bytes kept under the hex SHA-256 of their content.

The key is computed from the content, never chosen by the caller, so the same
bytes are kept once however often they are put, and a put repeated after a crash
or a replay is a no-op. A store never decides on its own to delete: whoever
records references to a key (``crm_core.attachments``) decides when none is left.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from typing import Protocol

_KEY = re.compile(r"^[0-9a-f]{64}$")
CHUNK_BYTES = 64 * 1024


class BlobNotFound(LookupError):
    """No blob is kept under this key."""


class InvalidBlobKey(ValueError):
    """The key is not a lowercase hex SHA-256 digest (so it could name no stored blob)."""


def blob_key(content: bytes) -> str:
    """The key of ``content``: its SHA-256, 64 lowercase hex digits."""
    return hashlib.sha256(content).hexdigest()


def check_key(key: str) -> str:
    """``key`` when it is a hex SHA-256; ``InvalidBlobKey`` otherwise (no path, no prefix)."""
    if not isinstance(key, str) or not _KEY.match(key):
        raise InvalidBlobKey(f"not a SHA-256 blob key: {key!r:.80}")
    return key


class BlobStore(Protocol):
    """Bytes by the SHA-256 of their content."""

    def put(self, content: bytes) -> str:
        """Keep ``content`` (once: a second put of the same bytes writes nothing); its key."""
        ...

    def get(self, key: str) -> Iterator[bytes]:
        """The content under ``key`` in chunks, read while iterated; ``BlobNotFound``
        (raised at once, before the first chunk) when there is none."""
        ...

    def delete(self, key: str) -> None:
        """Forget the content under ``key``; nothing happens when there is none."""
        ...

    def exists(self, key: str) -> bool:
        """Whether content is kept under ``key``."""
        ...

    def keys(self) -> Iterator[str]:
        """Every key kept, in no particular order (for sweeping blobs nothing references)."""
        ...

    def describe(self) -> str:
        """Where the blobs are, for operators (no credentials)."""
        ...
