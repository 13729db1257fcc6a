"""A campaign's sends counted by outcome, and each SMTP hand-over timed, on a real SMTP server."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest
from prometheus_client import generate_latest
from sqlalchemy import Engine

from crm_core.ops import logs
from tests.crm_core.ops.test_metrics import samples
from tests.smtp_server import SmtpTestServer
from tests.workers.test_campaign_tasks import (
    _campaign,
    _contacts,
    _run_until_idle,
    settings,
    smtp_server,
    worker,
)
from workers import tasks

__all__ = ["settings", "smtp_server", "worker"]


@pytest.fixture
def log_lines() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    root = logging.getLogger()
    level = root.level
    logs.configure_logging(format=logs.JSON, level="INFO", process="worker", stream=stream)
    yield stream
    for handler in [h for h in root.handlers if isinstance(h, logs._CrmHandler)]:
        root.removeHandler(handler)
    root.setLevel(level)


def test_sends_are_counted_by_outcome_and_timed_and_no_address_is_logged(
    committed_db: Engine,
    worker: list[int],
    smtp_server: SmtpTestServer,
    log_lines: io.StringIO,
) -> None:
    before = samples(generate_latest())
    _contacts(committed_db, 5)
    _campaign(committed_db, code="metered")
    assert tasks.dispatch_campaigns() == 1
    _run_until_idle(worker)
    after = samples(generate_latest())

    def delta(name: str, labels: tuple[tuple[str, str], ...]) -> float:
        return after.get((name, labels), 0.0) - before.get((name, labels), 0.0)

    assert len(smtp_server.handler.received) == 5
    assert delta("crm_campaign_sends_total", (("outcome", "sent"),)) == 5
    assert delta("crm_mail_send_seconds_count", (("outcome", "ok"),)) == 5
    assert delta("crm_mail_send_seconds_sum", (("outcome", "ok"),)) > 0
    # The SMTP server of the test (aiosmtpd, logger "mail.log") runs in this process too.
    ours = [line for line in log_lines.getvalue().splitlines() if '"mail.log"' not in line]
    assert not [line for line in ours if "@example.com" in line]
