"""How processing an event can fail, and which failures are worth retrying."""

from __future__ import annotations

from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError

from crm_core.errors import InvalidInput, PermanentError, TransientError

__all__ = ["InvalidInput", "PermanentError", "TransientError", "is_transient"]

# PostgreSQL SQLSTATEs that mean "try again": serialization failure, deadlock,
# lock not available, query cancelled (lock or statement timeout), operator
# intervention, and the connection exceptions of class 08.
_TRANSIENT_SQLSTATES = {"40001", "40P01", "55P03", "57014", "57P01", "57P02", "57P03"}
# A unique violation means another transaction created the row first; our
# writes are upserts, so the retry finds that row instead of failing on it.
_RACE_SQLSTATES = {"23505"}


def is_transient(exc: BaseException) -> bool:
    """Whether ``exc`` is worth a retry: lost connections, locks, serialization, races."""
    if isinstance(exc, TransientError):
        return True
    if isinstance(exc, DBAPIError):
        if exc.connection_invalidated or isinstance(exc, OperationalError):
            return True
        sqlstate = getattr(exc.orig, "sqlstate", None) or ""
        if isinstance(exc, IntegrityError):
            return sqlstate in _RACE_SQLSTATES
        return sqlstate in _TRANSIENT_SQLSTATES or sqlstate.startswith("08")
    return isinstance(exc, ConnectionError | TimeoutError)
