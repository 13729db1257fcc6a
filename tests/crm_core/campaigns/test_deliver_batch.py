"""Sending one batch over a real SMTP server: every row gets one outcome, in order."""

from __future__ import annotations

import time

from crm_core.campaigns.dispatch import ClaimedSend
from crm_core.campaigns.models import SendStatus
from crm_core.campaigns.sending import OUT_OF_TIME, PreparedSend, deliver_batch, needs_backoff
from crm_core.delivery.backends import backend_from_url
from crm_core.delivery.messages import OutboundMail, build_message
from tests.services import free_port
from tests.smtp_server import SmtpTestServer, smtp_server

__all__ = ["smtp_server"]


def batch(size: int) -> list[PreparedSend]:
    prepared = []
    for n in range(size):
        to = f"r{n}@example.org"
        message = build_message(
            OutboundMail(sender="Shop <news@shop.example>", to=to, subject="News", text="Hi")
        )
        prepared.append(PreparedSend(ClaimedSend(id=n + 1, contact_id=n + 1, email=to), 1, message))
    return prepared


def test_a_batch_within_its_time_sends_every_message(smtp_server: SmtpTestServer) -> None:
    outcomes = deliver_batch(
        backend_from_url(smtp_server.url()), batch(5), deadline=time.monotonic() + 60
    )
    assert [o.status for o in outcomes] == [SendStatus.SENT] * 5
    assert len(smtp_server.handler.received) == 5
    assert not needs_backoff(outcomes)


def test_a_batch_out_of_time_gives_the_rest_back_unattempted(smtp_server: SmtpTestServer) -> None:
    # The first message always goes (a batch makes progress); after the deadline none starts.
    outcomes = deliver_batch(
        backend_from_url(smtp_server.url()), batch(5), deadline=time.monotonic() - 1
    )
    assert [o.status for o in outcomes] == [SendStatus.SENT] + [SendStatus.PENDING] * 4
    assert [o.attempted for o in outcomes] == [True] + [False] * 4
    assert {o.error for o in outcomes[1:]} == {OUT_OF_TIME}
    assert [m.rcpt_tos for m in smtp_server.handler.received] == [["r0@example.org"]]
    # Running out of time is no delivery failure: the next batch need not wait.
    assert not needs_backoff(outcomes)


def test_an_unreachable_server_releases_the_batch_and_asks_for_a_pause() -> None:
    outcomes = deliver_batch(backend_from_url(f"smtp://127.0.0.1:{free_port()}"), batch(3))
    assert [o.status for o in outcomes] == [SendStatus.PENDING] * 3
    assert [o.attempted for o in outcomes] == [False] * 3
    assert needs_backoff(outcomes)
