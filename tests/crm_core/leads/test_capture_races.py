"""Concurrent captures on a real PostgreSQL: one contact per e-mail, one company per domain.

Each thread runs its own transaction; a barrier starts every round's captures
at once, and each round is built so that threads collide: the same new
e-mail twice, the same new company domain twice, the same new company name
twice. SQLite serializes writers, so only PostgreSQL can show a race.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, func, select, text

from crm_core import migrate
from crm_core import models as m
from crm_core.db import make_engine, make_session_factory
from crm_core.ingestion.commands import normalize_lead
from crm_core.leads.services import capture_lead
from crm_core.payloads.schemas import LeadPayload
from tests.services import scratch_postgres_database

pytestmark = pytest.mark.postgres

THREADS = 8
ROUNDS = 25


@pytest.fixture(scope="module")
def race_engine(postgres_available: None) -> Iterator[Engine]:
    with scratch_postgres_database("crm_leads_race") as url:
        migrate.upgrade(url)
        engine = make_engine(url, pool_size=THREADS + 2)
        yield engine
        engine.dispose()


@pytest.fixture
def empty_engine(race_engine: Engine) -> Iterator[Engine]:
    yield race_engine
    with race_engine.begin() as conn:
        for table in reversed(m.metadata.sorted_tables):
            conn.execute(table.delete())


def round_leads(r: int) -> list[dict[str, Any]]:
    """Eight leads that collide in pairs: 6 distinct people, 4 new customers."""
    campaign = f"campaign-{r % 3}"
    return [
        # The same new free-mail address twice: one contact, one person customer.
        {"email": f"person{r}@gmail.com", "full_name": f"Person {r}", "utm_campaign": campaign},
        {"email": f"PERSON{r}@gmail.com ", "phone": "+1 415 555 2671", "utm_campaign": campaign},
        # The same new address at a new company domain twice.
        {"email": f"buyer@shop{r}.example", "utm_campaign": campaign},
        {"email": f"buyer@shop{r}.example", "job_title": "Buyer", "utm_campaign": campaign},
        # Two new people at one new company domain asking about one deal:
        # one company, one primary, one opportunity.
        {
            "email": f"ada@firm{r}.example",
            "company": f"Firm {r}",
            "utm_campaign": campaign,
            "deal": {"name": f"Pilot {r}"},
        },
        {
            "email": f"bob@firm{r}.example",
            "utm_campaign": campaign,
            "deal": {"name": f"pilot {r}", "amount": "100"},
        },
        # Two free-mail people naming one new company: one company by name.
        {"email": f"carol{r}@yahoo.com", "company": f"Guild {r}", "utm_campaign": campaign},
        {"email": f"dave{r}@outlook.com", "company": f"guild  {r}", "utm_campaign": campaign},
    ]


def run_concurrently(engine: Engine, rounds: list[list[dict[str, Any]]]) -> list[BaseException]:
    """Capture ``rounds[r][t]`` in thread ``t``, all threads of a round at once."""
    sessions = make_session_factory(engine)
    barrier = threading.Barrier(len(rounds[0]))
    errors: list[BaseException] = []

    def worker(index: int) -> None:
        for leads in rounds:
            barrier.wait()
            lead = normalize_lead(LeadPayload(**leads[index]), default_region="US")
            try:
                with sessions.begin() as session:
                    capture_lead(session, source_id=None, event_id=None, lead=lead)
            except BaseException as exc:
                errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(len(rounds[0]))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return errors


def scalar(engine: Engine, query: Any) -> Any:
    with engine.connect() as conn:
        return conn.execute(query).scalar()


def count(engine: Engine, model: Any) -> int:
    return int(scalar(engine, select(func.count()).select_from(model)))


def customers_without_exactly_one_primary(engine: Engine) -> int:
    return int(
        scalar(
            engine,
            text(
                "SELECT count(*) FROM customers c WHERE"
                " (SELECT count(*) FROM contacts k WHERE k.customer_id = c.id AND k.is_primary)"
                " <> 1"
            ),
        )
    )


def test_overlapping_leads_captured_concurrently_make_exact_counts(empty_engine: Engine) -> None:
    rounds = [round_leads(r) for r in range(ROUNDS)]
    assert sum(len(leads) for leads in rounds) == 200

    errors = run_concurrently(empty_engine, rounds)

    assert errors == []
    assert count(empty_engine, m.Contact) == 150
    assert count(empty_engine, m.Customer) == 4 * ROUNDS
    assert count(empty_engine, m.Activity) == 200
    assert count(empty_engine, m.MarketingCampaign) == 3
    assert count(empty_engine, m.CampaignMember) == 4 * ROUNDS
    assert count(empty_engine, m.Opportunity) == ROUNDS
    assert customers_without_exactly_one_primary(empty_engine) == 0
    domains = select(func.count(m.Customer.domain.distinct()))
    assert scalar(empty_engine, domains) == 2 * ROUNDS


@pytest.mark.parametrize(
    "make_lead",
    [
        lambda i: {"email": "same@newco.example", "full_name": f"Name {i}"},
        lambda i: {"email": "same@gmail.com", "job_title": f"Title {i}"},
        lambda i: {"phone": "+44 20 7946 0958", "full_name": f"Caller {i}"},
    ],
    ids=["company-domain", "free-mail", "phone-only"],
)
def test_one_new_person_captured_by_every_thread_at_once_is_one_contact(
    empty_engine: Engine, make_lead: Callable[[int], dict[str, Any]]
) -> None:
    rounds = [[make_lead(i) for i in range(THREADS)]]

    errors = run_concurrently(empty_engine, rounds)

    assert errors == []
    assert count(empty_engine, m.Contact) == 1
    assert count(empty_engine, m.Customer) == 1
    assert count(empty_engine, m.Activity) == THREADS
    assert customers_without_exactly_one_primary(empty_engine) == 0


def test_people_of_a_known_company_asking_about_one_deal_at_once_make_one_opportunity(
    empty_engine: Engine,
) -> None:
    # The company exists, so nothing else serializes these leads.
    run_concurrently(empty_engine, [[{"email": "first@known.example", "company": "Known"}]])
    rounds = [
        [
            {"email": f"p{r}-{i}@known.example", "deal": {"name": f"Rollout {r}"}}
            for i in range(THREADS)
        ]
        for r in range(5)
    ]

    errors = run_concurrently(empty_engine, rounds)

    assert errors == []
    assert count(empty_engine, m.Customer) == 1
    assert count(empty_engine, m.Opportunity) == 5
