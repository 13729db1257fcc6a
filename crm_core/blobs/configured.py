"""The blob store the settings name: ``CRM_BLOB_URL`` (``s3://bucket/prefix`` or
``file://DIR``), by default the folder ``<var_dir>/blobs``."""

from __future__ import annotations

import functools
from pathlib import Path
from urllib.parse import unquote, urlsplit

from crm_core.blobs.filesystem import FileBlobStore
from crm_core.blobs.s3 import S3BlobStore
from crm_core.blobs.store import BlobStore
from crm_core.config import InvalidSettingError, Settings

DEFAULT_FOLDER = "blobs"


def blob_store_from_settings(settings: Settings) -> BlobStore:
    """The configured store; ``InvalidSettingError`` names a ``CRM_BLOB_URL`` it cannot use.

    One store per configuration and process: a worker builds its policy for every task,
    and an S3 client is costly to make (boto3 clients are safe to share between threads).
    """
    return _store(
        settings.blob_url.strip(), settings.blob_s3_endpoint_url.strip(), settings.var_dir
    )


@functools.lru_cache(maxsize=8)
def _store(url: str, endpoint: str, var_dir: Path) -> BlobStore:
    if not url:
        return FileBlobStore(var_dir / DEFAULT_FOLDER)
    parts = urlsplit(url)
    if parts.scheme == "file":
        folder = unquote(parts.netloc + parts.path)
        if not folder:
            raise InvalidSettingError("CRM_BLOB_URL file:// needs a folder, e.g. file:///srv/blobs")
        return FileBlobStore(Path(folder))
    if parts.scheme == "s3":
        if not parts.netloc:
            raise InvalidSettingError("CRM_BLOB_URL s3:// needs a bucket, e.g. s3://bucket/prefix")
        return S3BlobStore(
            bucket=parts.netloc, prefix=unquote(parts.path), endpoint_url=endpoint or None
        )
    given = f"{parts.scheme}://" if parts.scheme else "a URL without a scheme"
    raise InvalidSettingError(f"CRM_BLOB_URL must be s3://bucket/prefix or file://DIR, not {given}")
