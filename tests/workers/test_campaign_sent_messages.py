"""Every campaign message that left is recorded, so a report of its failure can be verified."""

from __future__ import annotations

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from crm_core.bounces.models import SentMessage
from crm_core.mail import normalize_message_id
from tests.smtp_server import SmtpTestServer, smtp_server
from tests.workers.test_campaign_tasks import (
    _campaign,
    _contacts,
    _run_until_idle,
    settings,
    tasks,
    worker,
)

__all__ = ["settings", "smtp_server", "worker"]


def test_each_campaign_message_sent_is_recorded_with_its_recipient(
    committed_db: Engine, worker: list[int], smtp_server: SmtpTestServer
) -> None:
    _contacts(committed_db, 5)
    _campaign(committed_db)
    assert tasks.dispatch_campaigns() == 1
    _run_until_idle(worker)
    on_the_wire = {
        normalize_message_id(mail.message["Message-ID"]): mail.rcpt_tos[0]
        for mail in smtp_server.handler.received
    }
    with Session(committed_db) as session:
        rows = session.scalars(select(SentMessage)).all()
    assert {row.message_id: row.recipient for row in rows} == on_the_wire
    assert {row.kind for row in rows} == {"campaign"}
    assert len(on_the_wire) == 5
