"""A message and its reply filed at the same moment by two transactions: one case.

Each round posts a new message to support and a reply to it, each in its own
thread and transaction, started together by a barrier; half the rounds file
the reply first. Without the lock on the Message-IDs both would see an empty
thread and open a case each. SQLite serializes writers, so only PostgreSQL
can show the race.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, func, select

from crm_core import migrate
from crm_core import models as m
from crm_core.db import make_engine, make_session_factory
from crm_core.ingestion.handlers import find_contact, resolve_contact
from crm_core.leads.normalize import free_mail_domains
from crm_core.mail import CaseTokens, parse_rfc822
from crm_core.support.inbound_mail import MailContext, receive_email
from crm_core.support.services import DEFAULT_SLA_HOURS
from tests.services import scratch_postgres_database

pytestmark = pytest.mark.postgres

ROUNDS = 30

CONTEXT = MailContext(
    source_id=None,
    event_id=None,
    support_addresses={"support@acme.test"},
    sla_hours=DEFAULT_SLA_HOURS,
    resolve_contact=lambda s, email, name: resolve_contact(
        s, email, name, free_domains=free_mail_domains(), field="from"
    ),
    find_contact=find_contact,
    case_tokens=CaseTokens.from_secret("test secret key"),
)


@pytest.fixture(scope="module")
def race_engine(postgres_available: None) -> Iterator[Engine]:
    with scratch_postgres_database("crm_thread_race") as url:
        migrate.upgrade(url)
        engine = make_engine(url, pool_size=4)
        yield engine
        engine.dispose()


def original(r: int) -> bytes:
    return (
        f"From: Ann <ann{r}@customer.example>\r\nTo: support@acme.test\r\n"
        f"Subject: Printer {r} is on fire\r\nMessage-ID: <first-{r}@customer.example>\r\n"
        f"\r\nPlease help.\r\n"
    ).encode()


def follow_up(r: int) -> bytes:
    return (
        f"From: Ann <ann{r}@customer.example>\r\nTo: support@acme.test\r\n"
        f"Subject: Re: Printer {r} is on fire\r\nMessage-ID: <second-{r}@customer.example>\r\n"
        f"In-Reply-To: <first-{r}@customer.example>\r\n"
        f"References: <first-{r}@customer.example>\r\n\r\nIt is getting worse.\r\n"
    ).encode()


def test_a_message_and_its_reply_filed_at_once_make_one_case(race_engine: Engine) -> None:
    sessions = make_session_factory(race_engine)
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def worker(index: int) -> None:
        for r in range(ROUNDS):
            # Odd rounds: the reply's thread goes first; even rounds: the original's.
            raw = (original, follow_up)[(index + r) % 2](r)
            barrier.wait()
            try:
                with sessions.begin() as session:
                    receive_email(session, parsed=parse_rfc822(raw), context=CONTEXT)
            except BaseException as exc:
                errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert errors == []
    with sessions() as session:
        cases = session.scalars(select(m.SupportCase).order_by(m.SupportCase.id)).all()
        assert len(cases) == ROUNDS
        # Whichever was filed first, the original is the case's root and both are on it.
        assert {c.root_message_id for c in cases} == {
            f"first-{r}@customer.example" for r in range(ROUNDS)
        }
        per_case = session.execute(
            select(m.Activity.support_case_id, func.count())
            .where(m.Activity.type == "email_received")
            .group_by(m.Activity.support_case_id)
        ).all()
        assert sorted(n for _, n in per_case) == [2] * ROUNDS
        assert all(case_id is not None for case_id, _ in per_case)
