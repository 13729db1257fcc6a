"""crm attachments sweep: blobs nothing names are deleted; a store it cannot reach is one line."""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import Engine

from crm_cli.main import cli
from crm_core import models as m
from crm_core.blobs.filesystem import FileBlobStore
from crm_core.config import get_settings
from crm_core.db import make_session_factory
from crm_core.mail import parse_rfc822
from crm_core.support.inbound_mail import receive_email
from tests.crm_core.attachments.mail import PDF, message_with
from tests.crm_core.support.test_inbound_mail import CONTEXT


@pytest.fixture
def runner(
    database_url: str, committed_db: Engine, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[CliRunner]:
    monkeypatch.setenv("CRM_DATABASE_URL", database_url)
    monkeypatch.setenv("CRM_SECRET_KEY", "cli test secret key")
    monkeypatch.setenv("CRM_BLOB_URL", f"file://{tmp_path / 'blobs'}")
    get_settings.cache_clear()
    yield CliRunner()
    get_settings.cache_clear()


def test_sweep_deletes_only_what_no_attachment_names(
    runner: CliRunner, committed_db: Engine, tmp_path: Path
) -> None:
    store = FileBlobStore(tmp_path / "blobs")
    with make_session_factory(committed_db).begin() as session:
        context = dataclasses.replace(CONTEXT, blobs=store)
        receive_email(
            session,
            parsed=parse_rfc822(message_with(("a.pdf", "application/pdf", PDF))),
            context=context,
        )
        assert session.query(m.StoredAttachment).count() == 1
    store.put(b"orphan")
    result = runner.invoke(cli, ["attachments", "sweep"])
    assert result.exit_code == 0, result.output
    assert (
        result.output
        == f"1 unreferenced blobs deleted from folder {(tmp_path / 'blobs').resolve()}\n"
    )
    assert list(store.keys()) == [hashlib.sha256(PDF).hexdigest()]


def test_an_unusable_blob_url_is_one_line(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CRM_BLOB_URL", "ftp://files.example/x")
    get_settings.cache_clear()
    result = runner.invoke(cli, ["attachments", "sweep"])
    assert result.exit_code == 1
    assert (
        result.output
        == "Error: CRM_BLOB_URL must be s3://bucket/prefix or file://DIR, not ftp://\n"
    )


def test_an_unreachable_bucket_is_one_line(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.services import free_port

    monkeypatch.setenv("CRM_BLOB_URL", "s3://nowhere/x")
    monkeypatch.setenv("CRM_BLOB_S3_ENDPOINT_URL", f"http://127.0.0.1:{free_port()}")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "k")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "s")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    get_settings.cache_clear()
    result = runner.invoke(cli, ["attachments", "sweep"])
    assert result.exit_code == 1
    assert result.output.startswith("Error: bucket s3://nowhere/x at http://127.0.0.1:")
    assert result.output.count("\n") == 1
