"""Shared fixtures: a migrated database per backend, sessions rolled back per test."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session

# Tests publish to an in-memory broker unless a test asks for a real one; set
# before anything imports celeryconfig, which reads the environment once.
os.environ.setdefault("CRM_BROKER_URL", "memory://")

from crm_core import migrate
from crm_core.db import make_engine
from crm_core.models import metadata
from tests import fault_summary
from tests.fault_summary import (  # noqa: F401  (hooks: the fault tests' summary table)
    pytest_runtest_logreport,
    pytest_terminal_summary,
)
from tests.keyring import TEST_KEYRING
from tests.services import postgres_reason, scratch_postgres_database, unavailable

BACKENDS = ("sqlite", "postgresql")
# Tests that start processes or a browser take seconds to a minute each: run first, they overlap
# the many quick ones instead of finishing alone at the end of a parallel run.
LONG_MARKERS = ("slow", "browser", "faults")


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The fault tests' bookkeeping (``tests.fault_summary``), then the long tests first (a
    stable sort: the rest keep their order, and with it their module fixtures)."""
    fault_summary.pytest_collection_modifyitems(items)
    items.sort(key=lambda item: not any(item.get_closest_marker(m) for m in LONG_MARKERS))


@pytest.fixture(scope="session")
def postgres_available() -> None:
    reason = postgres_reason()
    if reason:
        unavailable("PostgreSQL", reason)


@pytest.fixture(scope="session", params=BACKENDS)
def database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A database migrated to head, once per backend for the whole run."""
    if request.param == "sqlite":
        path: Path = tmp_path_factory.mktemp("sqlite") / "crm.sqlite3"
        url = f"sqlite:///{path}"
        migrate.upgrade(url)
        yield url
        return
    request.getfixturevalue("postgres_available")
    with scratch_postgres_database() as url:
        migrate.upgrade(url)
        yield url


@pytest.fixture(scope="session")
def db_engine(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url, keyring=TEST_KEYRING)
    yield engine
    engine.dispose()


@pytest.fixture
def session(db_engine: Engine) -> Iterator[Session]:
    """A session whose work, commits included, is rolled back after the test."""
    with db_engine.connect() as conn:
        trans = conn.begin()
        with Session(bind=conn, join_transaction_mode="create_savepoint") as s:
            yield s
        trans.rollback()


@pytest.fixture
def committed_db(db_engine: Engine) -> Iterator[Engine]:
    """For tests whose code under test commits (web requests, worker processes):
    every table is emptied afterwards."""
    yield db_engine
    with db_engine.begin() as conn:
        for table in reversed(metadata.sorted_tables):
            conn.execute(table.delete())


@pytest.fixture(autouse=True)
def _bind_factories(request: pytest.FixtureRequest) -> Iterator[None]:
    """Factories write into the test's ``session`` when the test has one."""
    if "session" not in request.fixturenames:
        yield
        return
    from tests.factories import ALL_FACTORIES

    bound = request.getfixturevalue("session")
    for factory_cls in ALL_FACTORIES:
        factory_cls._meta.sqlalchemy_session = bound
    yield
    for factory_cls in ALL_FACTORIES:
        factory_cls._meta.sqlalchemy_session = None


@pytest.fixture(scope="session")
def postgres_url(postgres_available: None) -> Iterator[str]:
    """A migrated PostgreSQL database for tests about PostgreSQL's own behaviour."""
    with scratch_postgres_database("crm_pg_only") as url:
        migrate.upgrade(url)
        yield url


@pytest.fixture
def postgres_committed(postgres_url: str) -> Iterator[Engine]:
    """Like ``committed_db``, on PostgreSQL only (row locks, advisory locks, SKIP LOCKED)."""
    engine = make_engine(postgres_url, keyring=TEST_KEYRING)
    yield engine
    with engine.begin() as conn:
        for table in reversed(metadata.sorted_tables):
            conn.execute(table.delete())
    engine.dispose()
