"""The S3-compatible server the bucket store is tested against."""

from tests.s3_server import s3_credentials, s3_server  # noqa: F401 (fixtures)
