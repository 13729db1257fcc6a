"""Sending one batch over a real SMTP server: every row gets one outcome, in order."""

from __future__ import annotations

import time
from email.message import EmailMessage

from crm_core.campaigns.models import SendStatus
from crm_core.campaigns.scheduling import ClaimedSend
from crm_core.campaigns.sending import (
    OUT_OF_TIME,
    PreparedSend,
    deliver_batch,
    needs_backoff,
    release_unsent,
)
from crm_core.mail_transport.backends import backend_from_url
from crm_core.mail_transport.messages import OutboundMail, build_message
from crm_core.mail_transport.smtp import SmtpBackend, SmtpSettings
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


class _BreaksOnSecond(SmtpBackend):
    """The real SMTP backend, failing its second message in a way it cannot place."""

    calls = 0

    def send(self, message: EmailMessage, *, idempotency_key: str | None = None) -> str:
        self.calls += 1
        if self.calls == 2:
            raise RuntimeError("backend bug")
        return super().send(message, idempotency_key=idempotency_key)


def test_an_unexpected_error_while_sending_is_unknown_for_that_row_and_stops_the_batch(
    smtp_server: SmtpTestServer,
) -> None:
    backend = backend_from_url(smtp_server.url())
    assert isinstance(backend, SmtpBackend)
    outcomes = deliver_batch(_BreaksOnSecond(backend.settings), batch(4))
    assert [o.status for o in outcomes] == [
        SendStatus.SENT, SendStatus.UNKNOWN, SendStatus.PENDING, SendStatus.PENDING,
    ]  # fmt: skip
    assert outcomes[1].error == "unexpected error while sending: RuntimeError: backend bug"
    assert [o.attempted for o in outcomes[2:]] == [False, False]
    assert len(smtp_server.handler.received) == 1


def test_a_batch_for_a_backend_that_cannot_even_open_goes_back_attempted() -> None:
    class NoOpen(SmtpBackend):
        def open(self) -> None:
            raise RuntimeError("cannot open")

    outcomes = deliver_batch(NoOpen(SmtpSettings(host="127.0.0.1", port=free_port())), batch(2))
    assert [(o.status, o.attempted) for o in outcomes] == [(SendStatus.PENDING, True)] * 2
    assert {o.error for o in outcomes} == {"RuntimeError: cannot open"}


def test_release_unsent_gives_a_claimed_batch_back_as_attempted() -> None:
    claimed = [ClaimedSend(id=1, contact_id=1, email="a@example.org", attempts=2)]
    (outcome,) = release_unsent(claimed, "RecursionError: maximum recursion depth exceeded")
    assert (outcome.status, outcome.attempted, outcome.error) == (
        SendStatus.PENDING, True, "RecursionError: maximum recursion depth exceeded",
    )  # fmt: skip
