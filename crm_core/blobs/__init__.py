"""Content-addressed storage of bytes (attachments): a folder, or an S3-compatible bucket."""

from crm_core.blobs.store import (
    BlobNotFound,
    BlobStore,
    InvalidBlobKey,
    blob_key,
    check_key,
)

__all__ = ["BlobNotFound", "BlobStore", "InvalidBlobKey", "blob_key", "check_key"]
