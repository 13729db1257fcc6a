"""The worker process's settings, engine and unit of work, and the seam that replaces them.

Every task's base class, ``CrmTask``, carries them: a task reads ``self.settings`` and opens a
transaction with ``self.session()``. Both come from the environment, unless code running tasks
in this process (tests, a script) says otherwise with ``injected(...)``.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass

from celery import Task
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from crm_core.config import Settings, get_settings
from crm_core.db import make_engine, make_session_factory
from crm_core.encryption.keyring import Keyring

_engine: Engine | None = None
_factory: sessionmaker[Session] | None = None
# A thread-pool worker's first tasks may start at once; they must share one engine.
_creating = threading.Lock()


@dataclass(frozen=True)
class WorkerContext:
    """What ``injected`` puts in place; ``None`` leaves the outer value."""

    settings: Settings | None = None
    sessions: sessionmaker[Session] | None = None


_injected: list[WorkerContext] = []


@contextmanager
def injected(
    *, settings: Settings | None = None, sessions: sessionmaker[Session] | None = None
) -> Iterator[None]:
    """Run tasks in this process with these settings and/or sessions until the block ends.

    Blocks nest: an inner one that gives only ``settings`` keeps the outer sessions.
    """
    context = WorkerContext(settings=settings, sessions=sessions)
    _injected.append(context)
    try:
        yield
    finally:
        _injected.remove(context)


def worker_settings() -> Settings:
    """The settings tasks work with: the innermost injected ones, else the environment's."""
    for context in reversed(_injected):
        if context.settings is not None:
            return context.settings
    return get_settings()


def session_factory() -> sessionmaker[Session]:
    """This process's session factory (the innermost injected one, if any), created on
    first use (after any fork)."""
    global _engine, _factory
    for context in reversed(_injected):
        if context.sessions is not None:
            return context.sessions
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


class CrmTask(Task):
    """The base class of every task (the app's ``task_cls``): its settings and its sessions.

    Tasks are bound (``bind=True``) and read ``self.settings``, ``self.session()`` and, for a
    service that opens its own transactions, ``self.sessions``; ``injected`` replaces them all.
    """

    @property
    def settings(self) -> Settings:
        """The settings this task works with (``worker_settings``)."""
        return worker_settings()

    @property
    def sessions(self) -> sessionmaker[Session]:
        """The session factory, for a service that commits step by step (``session_factory``)."""
        return session_factory()

    def session(self) -> AbstractContextManager[Session]:
        """One transaction: committed when the block ends, rolled back if it raises."""
        return unit_of_work()
