"""Blobs as files in a folder: ``<root>/ab/cd/abcd…`` (the embedded default, ``var/blobs``).

A blob is written to a temporary file in its final folder, flushed to disk, and
renamed into place, so a reader never sees half a file and two writers of the
same bytes both succeed (the rename replaces identical content).
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from crm_core.blobs.store import CHUNK_BYTES, BlobNotFound, blob_key, check_key


class FileBlobStore:
    """A ``BlobStore`` in a local folder, created on the first put."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def path_of(self, key: str) -> Path:
        """Where the blob of ``key`` is (or would be)."""
        check_key(key)
        return self.root / key[:2] / key[2:4] / key

    def put(self, content: bytes) -> str:
        key = blob_key(content)
        path = self.path_of(key)
        if path.exists():
            return key
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f".{key}.{os.getpid()}.{secrets.token_hex(4)}")
        try:
            with open(temporary, "xb") as handle:
                handle.write(content)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, path)
        finally:
            with contextlib.suppress(FileNotFoundError):
                temporary.unlink()
        return key

    def get(self, key: str) -> Iterator[bytes]:
        try:
            handle = open(self.path_of(key), "rb")  # noqa: SIM115 (closed by the generator)
        except FileNotFoundError:
            raise BlobNotFound(key) from None
        return _chunks(handle)

    def delete(self, key: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path_of(key).unlink()

    def exists(self, key: str) -> bool:
        return self.path_of(key).is_file()

    def keys(self) -> Iterator[str]:
        if not self.root.is_dir():
            return
        for path in self.root.glob("??/??/*"):
            if not path.name.startswith(".") and path.is_file():
                yield path.name

    def describe(self) -> str:
        return f"folder {self.root.resolve()}"


def _chunks(handle: BinaryIO) -> Iterator[bytes]:
    with handle:
        while chunk := handle.read(CHUNK_BYTES):
            yield chunk
