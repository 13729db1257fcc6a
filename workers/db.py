"""The worker process's engine and unit of work."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from crm_core.config import get_settings
from crm_core.db import make_engine, make_session_factory
from crm_core.encryption.keyring import Keyring

_engine: Engine | None = None
_factory: sessionmaker[Session] | None = None
# A thread-pool worker's first tasks may start at once; they must share one engine.
_creating = threading.Lock()


def session_factory() -> sessionmaker[Session]:
    """This process's session factory, created on first use (after any fork)."""
    global _engine, _factory
    if _factory is not None:
        return _factory
    with _creating:
        if _factory is not None:
            return _factory
        settings = get_settings()
        _engine = make_engine(
            settings.resolved_database_url(),
            pool_size=settings.db_pool_size,
            pool_timeout=settings.db_pool_timeout,
            pre_ping=settings.db_pre_ping,
            keyring=Keyring.from_settings(settings),
        )
        _factory = make_session_factory(_engine)
    return _factory


def reset_engine() -> None:
    """Forget the engine inherited from a parent process (its sockets are the parent's)."""
    global _engine, _factory
    if _engine is not None:
        _engine.dispose(close=False)
    _engine = None
    _factory = None


@contextmanager
def unit_of_work() -> Iterator[Session]:
    """One transaction: committed when the block ends, rolled back if it raises."""
    with session_factory().begin() as session:
        yield session
