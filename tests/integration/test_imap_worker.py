"""Beat polls a real mailbox through real workers: Dovecot → Redis → workers → PostgreSQL.

Two workers, each with its own beat, so every mailbox is polled twice per
interval: the lease and the inbox key must still make each message one event.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from crm_core import migrate
from crm_core.db import make_engine, make_session_factory
from crm_core.ingestion.models import EventStatus, InboxEvent
from crm_core.mailboxes.services import add_mailbox
from crm_core.support.models import SupportCase
from tests.imap_server import (
    DovecotServer,
    imap_server_fixture,  # noqa: F401 - the fixture imap_server
    support_request,
)
from tests.keyring import TEST_KEYRING
from tests.processes import celery_worker, service_env, wait_until
from tests.services import REDIS_URL, redis_reason, scratch_postgres_database, unavailable

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.redis]

REPLY = (Path(__file__).parents[1] / "fixtures" / "imap" / "support_reply.eml").read_bytes()


@pytest.fixture
def database(postgres_available: None) -> Iterator[tuple[str, sessionmaker[Session]]]:
    reason = redis_reason()
    if reason:
        unavailable("Redis", reason)
    with scratch_postgres_database("crm_imap_worker") as url:
        migrate.upgrade(url)
        engine = make_engine(url, keyring=TEST_KEYRING)
        yield url, make_session_factory(engine)
        engine.dispose()


def processed(sessions: sessionmaker[Session]) -> int:
    with sessions() as session:
        query = select(func.count()).where(InboxEvent.status == EventStatus.PROCESSED)
        return session.scalar(query) or 0


def test_beat_polls_the_mailbox_and_workers_file_each_message_once(
    imap_server: DovecotServer, database: tuple[str, sessionmaker[Session]], tmp_path: Path
) -> None:
    url, sessions = database
    with sessions.begin() as session:
        add_mailbox(session, name="support", url=imap_server.url())
    imap_server.append([support_request(1), support_request(2)])
    env = service_env(
        CRM_DATABASE_URL=url,
        CRM_BROKER_URL=REDIS_URL,
        # Our own keys on the shared Redis: no other run's messages, none left behind.
        CRM_BROKER_KEY_PREFIX=f"imap-{uuid.uuid4().hex}:",
        CRM_SECRET_KEY="imap-secret",
        CRM_VAR_DIR=str(tmp_path),
        CRM_IMAP_POLL_SECONDS="1",
        CRM_IMAP_BATCH_SIZE="2",
        CRM_SUPPORT_ADDRESSES="support@acme.test",
    )
    queues = "ingest,mailboxes,maintenance"
    with (
        celery_worker(env, queues=queues, beat=True, log_path=tmp_path / "worker-1.log"),
        celery_worker(env, queues=queues, beat=True, log_path=tmp_path / "worker-2.log"),
    ):
        wait_until(lambda: processed(sessions) == 2, timeout=90, what="2 processed e-mails")
        # The reply comes once its request is filed: workers process events concurrently.
        imap_server.append([REPLY, support_request(3)])
        wait_until(lambda: processed(sessions) == 4, timeout=90, what="4 processed e-mails")
        # A message is flagged right after its batch is stored, maybe after it was processed.
        wait_until(
            lambda: all("\\Seen" in f for f in imap_server.flags().values()),
            timeout=30,
            what="every message flagged \\Seen",
        )

    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(InboxEvent)) == 4
        assert session.scalar(select(func.count()).select_from(SupportCase)) == 3
