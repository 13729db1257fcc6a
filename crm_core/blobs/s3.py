"""Blobs in an S3-compatible bucket, through boto3: ``s3://bucket/prefix`` → ``prefix/ab/abcd…``.

Credentials, region and endpoint come the standard boto3 way (``AWS_ACCESS_KEY_ID``,
``AWS_SECRET_ACCESS_KEY``, ``AWS_DEFAULT_REGION``, ``AWS_ENDPOINT_URL``, a profile,
an instance role…); ``CRM_BLOB_S3_ENDPOINT_URL`` overrides the endpoint, for
MinIO, Ceph, R2 or any other S3-compatible server.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from crm_core.blobs.store import CHUNK_BYTES, BlobNotFound, InvalidBlobKey, blob_key, check_key

_MISSING = {"404", "NoSuchKey", "NotFound"}


class S3BlobStore:
    """A ``BlobStore`` in ``bucket`` under ``prefix``."""

    def __init__(self, *, bucket: str, prefix: str = "", client: Any = None, **client_args: Any):
        import boto3  # the runtime only pays for it when a bucket is configured

        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.client = client or boto3.client("s3", **client_args)

    def object_key(self, key: str) -> str:
        """The object's key in the bucket."""
        check_key(key)
        name = f"{key[:2]}/{key}"
        return f"{self.prefix}/{name}" if self.prefix else name

    def put(self, content: bytes) -> str:
        key = blob_key(content)
        if self.exists(key):
            return key
        self.client.put_object(
            Bucket=self.bucket,
            Key=self.object_key(key),
            Body=content,
            ContentType="application/octet-stream",
        )
        return key

    def get(self, key: str) -> Iterator[bytes]:
        try:
            answer = self.client.get_object(Bucket=self.bucket, Key=self.object_key(key))
        except Exception as exc:
            if _is_missing(exc):
                raise BlobNotFound(key) from None
            raise
        return _chunks(answer["Body"])

    def delete(self, key: str) -> None:
        # S3 answers a delete of a missing object with success.
        self.client.delete_object(Bucket=self.bucket, Key=self.object_key(key))

    def exists(self, key: str) -> bool:
        try:
            self.client.head_object(Bucket=self.bucket, Key=self.object_key(key))
        except Exception as exc:
            if _is_missing(exc):
                return False
            raise
        return True

    def keys(self) -> Iterator[str]:
        paginator = self.client.get_paginator("list_objects_v2")
        start = f"{self.prefix}/" if self.prefix else ""
        for page in paginator.paginate(Bucket=self.bucket, Prefix=start):
            for item in page.get("Contents", []):
                name = str(item["Key"]).rsplit("/", 1)[-1]
                try:
                    if item["Key"] == self.object_key(name):
                        yield name
                except InvalidBlobKey:
                    continue  # not one of ours

    def describe(self) -> str:
        where = f"s3://{self.bucket}/{self.prefix}" if self.prefix else f"s3://{self.bucket}"
        endpoint = getattr(getattr(self.client, "meta", None), "endpoint_url", None)
        return f"bucket {where}" + (f" at {endpoint}" if endpoint else "")


def _is_missing(exc: Exception) -> bool:
    response = getattr(exc, "response", None)
    if not isinstance(response, dict):
        return False
    code = str(response.get("Error", {}).get("Code", ""))
    status = str(response.get("ResponseMetadata", {}).get("HTTPStatusCode", ""))
    return code in _MISSING or status == "404"


def _chunks(body: Any) -> Iterator[bytes]:
    try:
        yield from body.iter_chunks(CHUNK_BYTES)
    finally:
        body.close()
