"""Both blob stores keep the same promises: a folder, and a bucket on a real S3 server."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from crm_core.blobs import BlobNotFound, BlobStore, InvalidBlobKey, blob_key
from crm_core.blobs.configured import blob_store_from_settings
from crm_core.blobs.filesystem import FileBlobStore
from crm_core.blobs.s3 import S3BlobStore
from crm_core.blobs.store import CHUNK_BYTES
from crm_core.config import InvalidSettingError, Settings
from tests.s3_server import S3Server

PDF = b"%PDF-1.4\n" + bytes(range(256)) * 40


@pytest.fixture(params=["folder", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> BlobStore:
    if request.param == "folder":
        return FileBlobStore(tmp_path / "blobs")
    server: S3Server = request.getfixturevalue("s3_server")
    return S3BlobStore(bucket=server.new_bucket(), prefix="crm/att", client=server.client())


def test_put_keeps_bytes_under_their_sha256(store: BlobStore) -> None:
    key = store.put(PDF)
    assert key == hashlib.sha256(PDF).hexdigest() == blob_key(PDF)
    assert store.exists(key)
    assert b"".join(store.get(key)) == PDF


def test_the_same_bytes_are_kept_once(store: BlobStore) -> None:
    first = store.put(PDF)
    second = store.put(PDF)
    other = store.put(b"another file")
    assert first == second
    assert sorted(store.keys()) == sorted({first, other})


def test_large_content_streams_in_chunks_byte_identical(store: BlobStore) -> None:
    content = os.urandom(3 * CHUNK_BYTES + 17)
    key = store.put(content)
    chunks = list(store.get(key))
    assert len(chunks) > 1
    assert b"".join(chunks) == content


def test_empty_content_is_a_blob_too(store: BlobStore) -> None:
    key = store.put(b"")
    assert store.exists(key)
    assert b"".join(store.get(key)) == b""


def test_delete_forgets_and_is_quiet_when_absent(store: BlobStore) -> None:
    key = store.put(PDF)
    store.delete(key)
    assert not store.exists(key)
    store.delete(key)  # again: nothing to do
    with pytest.raises(BlobNotFound):
        store.get(key)
    assert list(store.keys()) == []


def test_a_missing_blob_is_blob_not_found_before_any_byte(store: BlobStore) -> None:
    with pytest.raises(BlobNotFound):
        store.get(blob_key(b"never stored"))
    assert not store.exists(blob_key(b"never stored"))


@pytest.mark.parametrize(
    "key",
    ["../../etc/passwd", "ABCDEF" + "0" * 58, "0" * 63, "0" * 65, "", "g" * 64, "0" * 63 + "/"],
)
def test_a_key_that_is_not_a_sha256_is_refused(store: BlobStore, key: str) -> None:
    for call in (store.get, store.exists, store.delete):
        with pytest.raises(InvalidBlobKey):
            call(key)


def test_folder_layout_and_no_temporary_files_left(tmp_path: Path) -> None:
    store = FileBlobStore(tmp_path / "blobs")
    key = store.put(PDF)
    assert (tmp_path / "blobs" / key[:2] / key[2:4] / key).read_bytes() == PDF
    assert [p.name for p in (tmp_path / "blobs").rglob("*") if p.is_file()] == [key]


def test_keys_of_an_unused_folder_are_none(tmp_path: Path) -> None:
    assert list(FileBlobStore(tmp_path / "nothing-yet").keys()) == []


def test_s3_objects_live_under_the_prefix_and_other_objects_are_not_keys(
    s3_server: S3Server,
) -> None:
    bucket = s3_server.new_bucket()
    client = s3_server.client()
    store = S3BlobStore(bucket=bucket, prefix="/crm/att/", client=client)
    key = store.put(PDF)
    client.put_object(Bucket=bucket, Key="crm/att/readme.txt", Body=b"x")  # type: ignore[attr-defined]
    client.put_object(Bucket=bucket, Key=f"elsewhere/{key[:2]}/{key}", Body=b"x")  # type: ignore[attr-defined]
    names = [o["Key"] for o in client.list_objects_v2(Bucket=bucket)["Contents"]]  # type: ignore[attr-defined]
    assert f"crm/att/{key[:2]}/{key}" in names
    assert list(store.keys()) == [key]


def test_default_is_the_folder_under_var_dir(tmp_path: Path) -> None:
    store = blob_store_from_settings(Settings(var_dir=tmp_path))
    assert isinstance(store, FileBlobStore)
    assert store.root == tmp_path / "blobs"


def test_a_file_url_names_the_folder(tmp_path: Path) -> None:
    store = blob_store_from_settings(Settings(blob_url=f"file://{tmp_path}/kept"))
    assert isinstance(store, FileBlobStore)
    assert store.root == tmp_path / "kept"


@pytest.mark.usefixtures("s3_credentials")
def test_an_s3_url_with_the_endpoint_setting_reaches_the_server(s3_server: S3Server) -> None:
    bucket = s3_server.new_bucket()
    settings = Settings(blob_url=f"s3://{bucket}/mail", blob_s3_endpoint_url=s3_server.endpoint_url)
    store = blob_store_from_settings(settings)
    assert isinstance(store, S3BlobStore)
    key = store.put(PDF)
    assert store.describe() == f"bucket s3://{bucket}/mail at {s3_server.endpoint_url}"
    objects = s3_server.client().list_objects_v2(Bucket=bucket)["Contents"]  # type: ignore[attr-defined]
    assert [o["Key"] for o in objects] == [f"mail/{key[:2]}/{key}"]


@pytest.mark.usefixtures("s3_credentials")
def test_the_standard_aws_endpoint_variable_is_honoured(
    s3_server: S3Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_server.endpoint_url)
    bucket = s3_server.new_bucket()
    store = blob_store_from_settings(Settings(blob_url=f"s3://{bucket}"))
    key = store.put(PDF)
    assert b"".join(store.get(key)) == PDF


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://host/x", "must be s3://bucket/prefix or file://DIR"),
        ("s3:///prefix", "needs a bucket"),
        ("file://", "needs a folder"),
        ("just-a-path", "must be s3://bucket/prefix or file://DIR"),
    ],
)
def test_an_unusable_url_is_a_one_line_error(url: str, message: str) -> None:
    with pytest.raises(InvalidSettingError, match=message) as caught:
        blob_store_from_settings(Settings(blob_url=url))
    assert "\n" not in str(caught.value)
