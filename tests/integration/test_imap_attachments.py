"""A real mailbox's attachment, end to end: Dovecot → the poll task → the ingest task →
its bytes in a bucket on a real S3-compatible server (moto, on loopback) → the download."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from crm_core import migrate
from crm_core import models as m
from crm_core.blobs.configured import blob_store_from_settings
from crm_core.config import Settings, get_settings
from crm_core.db import make_engine, make_session_factory
from crm_core.ingestion.models import EventStatus
from crm_core.mailboxes.services import add_mailbox
from crm_core.people import api_keys
from crm_core.people.permissions import Actor
from tests.crm_core.attachments.mail import PDF, message_with
from tests.imap_server import (
    DovecotServer,
    imap_server_fixture,  # noqa: F401 - the fixture imap_server
)
from tests.keyring import TEST_KEYRING
from tests.s3_server import (  # noqa: F401 - the fixture s3_server
    CREDENTIALS,
    S3Server,
    s3_server_fixture,
)
from tests.services import scratch_postgres_database
from webhooks.app import create_app
from workers import db as worker_db
from workers import mailbox_tasks, tasks

pytestmark = [pytest.mark.postgres]


@pytest.fixture
def settings(
    postgres_available: None, s3_server: S3Server, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Settings]:
    """A private PostgreSQL database, and attachments in a fresh bucket on the S3 server."""
    for name, value in CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    with scratch_postgres_database("crm_imap_attachments") as url:
        migrate.upgrade(url)
        yield Settings(
            database_url=url,
            broker_url="memory://",
            secret_key="imap attachments test key",
            public_url="http://127.0.0.1:5000",
            support_addresses=frozenset({"support@acme.test"}),
            blob_url=f"s3://{s3_server.new_bucket()}/mail",
            blob_s3_endpoint_url=s3_server.endpoint_url,
        )
    get_settings.cache_clear()


@pytest.fixture
def engine(settings: Settings) -> Iterator[Engine]:
    engine = make_engine(settings.database_url, keyring=TEST_KEYRING)
    try:
        with worker_db.injected(settings=settings, sessions=make_session_factory(engine)):
            yield engine
    finally:
        engine.dispose()


def test_an_attachment_read_over_imap_is_kept_in_the_bucket_and_downloads(
    imap_server: DovecotServer,
    engine: Engine,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    published: list[int] = []
    monkeypatch.setattr(
        mailbox_tasks, "enqueue_events", lambda ids, **_: published.extend(ids) or len(ids)
    )
    with make_session_factory(engine).begin() as session:
        mailbox_id = add_mailbox(session, name="support", url=imap_server.url()).id
    raw = message_with(("contract.pdf", "application/pdf", PDF), message_id=f"<{uuid.uuid4()}@x>")
    imap_server.append([raw])

    mailbox_tasks.poll(mailbox_id)
    assert len(published) == 1
    assert tasks.process_events(published) == {EventStatus.PROCESSED: 1}

    with Session(engine) as session:
        row = session.scalars(select(m.StoredAttachment)).one()
        assert (row.filename, row.size) == ("contract.pdf", len(PDF))
    store = blob_store_from_settings(settings)
    assert list(store.keys()) == [row.sha256]

    app = create_app(settings)
    with app.extensions["crm"].sessions.begin() as session:
        _, key = api_keys.create_api_key(
            session, actor=Actor.operator("tests"), name="reader", scopes=("read",)
        )
    response = app.test_client().get(
        f"/api/attachments/{row.id}", headers={"Authorization": f"Bearer {key}"}
    )
    assert response.status_code == 200
    assert response.data == PDF
    assert response.headers["Content-Disposition"] == 'attachment; filename="contract.pdf"'
