"""PostgreSQL: two dispatchers never win the same campaign, two batches never share a row."""

from __future__ import annotations

import datetime as dt
import threading
import time

from sqlalchemy import Engine, select, text
from sqlalchemy.orm import Session

from crm_core.campaigns import scheduling
from crm_core.campaigns.models import CampaignStatus, MarketingCampaign
from crm_core.customers.models import Contact, Customer
from crm_core.db import make_session_factory

NOW = dt.datetime(2026, 6, 1, 12, tzinfo=dt.UTC)


def _campaigns(engine: Engine, count: int) -> list[int]:
    with make_session_factory(engine).begin() as session:
        campaigns = [
            MarketingCampaign(
                code=f"race-{n}", name=f"Race {n}", status=CampaignStatus.SCHEDULED, send_at=NOW
            )
            for n in range(count)
        ]
        session.add_all(campaigns)
        session.flush()
        return [c.id for c in campaigns]


def _wait_until_blocked(engine: Engine, pid: int) -> None:
    """Until backend ``pid`` waits for a lock (what a losing dispatcher does)."""
    query = text("SELECT wait_event_type FROM pg_stat_activity WHERE pid = :pid")
    with engine.connect() as conn:
        for _ in range(1000):
            if conn.execute(query, {"pid": pid}).scalar() == "Lock":
                return
            time.sleep(0.01)
    raise AssertionError("the second dispatcher never waited for the first")


def test_the_second_dispatcher_waits_then_finds_nothing(postgres_committed: Engine) -> None:
    [campaign_id] = _campaigns(postgres_committed, 1)
    factory = make_session_factory(postgres_committed)
    second: list[list[int]] = []
    pid: list[int] = []

    def other_dispatcher() -> None:
        with factory.begin() as session:
            pid.append(session.execute(text("SELECT pg_backend_pid()")).scalar_one())
            ready.set()
            second.append(scheduling.claim_due_campaigns(session, now=NOW))

    ready = threading.Event()
    with factory.begin() as session:
        assert scheduling.claim_due_campaigns(session, now=NOW) == [campaign_id]
        thread = threading.Thread(target=other_dispatcher)
        thread.start()
        assert ready.wait(10)
        _wait_until_blocked(postgres_committed, pid[0])
    thread.join(10)
    assert second == [[]]


def test_many_racing_dispatchers_win_each_campaign_once(postgres_committed: Engine) -> None:
    ids = _campaigns(postgres_committed, 30)
    factory = make_session_factory(postgres_committed)
    barrier = threading.Barrier(4)
    won: list[int] = []
    lock = threading.Lock()

    def run() -> None:
        barrier.wait()
        with factory.begin() as session:
            claimed = scheduling.claim_due_campaigns(session, now=NOW)
        with lock:
            won.extend(claimed)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(won) == sorted(ids)


def test_concurrent_batches_skip_each_others_rows(postgres_committed: Engine) -> None:
    factory = make_session_factory(postgres_committed)
    with factory.begin() as session:
        customer = Customer(name="Batch Co", name_key="batch co", kind="company")
        session.add(customer)
        session.flush()
        session.add_all(
            Contact(customer_id=customer.id, email=f"b{n}@example.com",
                    email_normalized=f"b{n}@example.com")
            for n in range(10)
        )  # fmt: skip
        campaign = MarketingCampaign(
            code="batches", name="Batches", status=CampaignStatus.SENDING, segment={}
        )
        session.add(campaign)
        session.flush()
        scheduling.materialize_recipients(session, campaign=campaign, now=NOW)
    first_session = Session(postgres_committed)
    try:
        with first_session.begin():
            first = scheduling.claim_batch(first_session, campaign_id=campaign.id, size=6, now=NOW)
            # The first batch has not committed; the second does not wait for it.
            with factory.begin() as other:
                # Waiting would be the bug: fail instead of hanging.
                other.execute(text("SET LOCAL lock_timeout = '5s'"))
                second = scheduling.claim_batch(other, campaign_id=campaign.id, size=6, now=NOW)
    finally:
        first_session.close()
    assert (len(first), len(second)) == (6, 4)
    assert {row.id for row in first}.isdisjoint({row.id for row in second})
    with factory() as session:
        status = session.scalar(
            select(MarketingCampaign.status).where(MarketingCampaign.id == campaign.id)
        )
    assert status == "sending"
