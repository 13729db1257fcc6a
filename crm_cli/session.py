"""The command line's unit of work: one transaction on the configured database."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.orm import Session, sessionmaker

from crm_core.config import get_settings
from crm_core.db import make_engine, make_session_factory
from crm_core.encryption.keyring import Keyring


@contextmanager
def session_factory() -> Iterator[sessionmaker[Session]]:
    """Sessions on the configured database, for work done in several short transactions."""
    settings = get_settings()
    engine = make_engine(settings.resolved_database_url(), keyring=Keyring.from_settings(settings))
    try:
        yield make_session_factory(engine)
    finally:
        engine.dispose()


@contextmanager
def transaction() -> Iterator[Session]:
    """A session committed when the block ends, rolled back if it raises."""
    with session_factory() as sessions, sessions.begin() as session:
        yield session
