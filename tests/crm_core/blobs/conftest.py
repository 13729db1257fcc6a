"""The S3-compatible server the bucket store is tested against."""

from tests.s3_server import s3_credentials_fixture, s3_server_fixture  # noqa: F401 (fixtures)
