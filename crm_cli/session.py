"""The command line's unit of work: one transaction on the configured database."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.orm import Session

from crm_core.config import get_settings
from crm_core.db import make_engine, make_session_factory


@contextmanager
def transaction() -> Iterator[Session]:
    """A session committed when the block ends, rolled back if it raises."""
    engine = make_engine(get_settings().resolved_database_url())
    try:
        with make_session_factory(engine).begin() as session:
            yield session
    finally:
        engine.dispose()
