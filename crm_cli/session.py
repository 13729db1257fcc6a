"""The command line's unit of work: one transaction on the configured database, done by the
operator (the person at the command line)."""

from __future__ import annotations

import getpass
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.orm import Session, sessionmaker

from crm_core.config import get_settings
from crm_core.db import make_engine, make_session_factory
from crm_core.encryption.keyring import Keyring
from crm_core.people.permissions import Actor


def operator() -> Actor:
    """The person at the command line, named by their login (``operator:<name>`` in the audit
    log), with every permission: whoever runs ``crm`` already holds the database's credentials."""
    try:
        name = getpass.getuser()
    except (KeyError, OSError):  # no login name in this environment
        name = "cli"
    return Actor.operator(name)


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
