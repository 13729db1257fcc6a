"""How processing an event can fail, and which failures are worth retrying."""

from __future__ import annotations

from typing import Any

from sqlalchemy.exc import DBAPIError, OperationalError

# PostgreSQL SQLSTATEs that mean "try again": serialization failure, deadlock,
# lock not available, query cancelled (lock or statement timeout), and the
# connection exceptions of class 08.
_TRANSIENT_SQLSTATES = {"40001", "40P01", "55P03", "57014", "57P01", "57P02", "57P03"}


class PermanentError(Exception):
    """Processing this event can never succeed as it is: mark it ``failed``."""


class InvalidPayload(PermanentError):
    """The stored payload does not validate: mark the event ``invalid`` with its errors."""

    def __init__(self, message: str, errors: list[dict[str, Any]]) -> None:
        super().__init__(message)
        self.errors = errors


class TransientError(Exception):
    """Raised by a handler when a retry later may succeed (a dependency was down)."""


def is_transient(exc: BaseException) -> bool:
    """Whether ``exc`` is worth a retry: lost connections, lock and serialization failures."""
    if isinstance(exc, TransientError):
        return True
    if isinstance(exc, DBAPIError):
        if exc.connection_invalidated or isinstance(exc, OperationalError):
            return True
        sqlstate = getattr(exc.orig, "sqlstate", None) or ""
        return sqlstate in _TRANSIENT_SQLSTATES or sqlstate.startswith("08")
    return isinstance(exc, ConnectionError | TimeoutError)
