"""Log lines every process writes alike: JSON or readable, and what they are about.

``configure_logging`` sets up the root logger of a web process, a worker or the CLI: one JSON
object a line (``CRM_LOG_FORMAT=json``, the default with a real database) or a readable
console line (the default on the embedded SQLite, ``crm dev``). Either way each line carries
what the code running it is about, set with ``log_context``: the event's ``event_id``,
``source`` and ``kind``, the web request's ``request_id`` and the Celery ``task_id``. So
one event can be followed from the request that stored it to the worker that processed it.

No personal data goes into a line: no payload bodies and no addresses. Where an identity
helps, ``identity_hash`` stands in for it.
"""

from __future__ import annotations

import hashlib
import logging
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar, Token
from typing import Any, TextIO

from pythonjsonlogger.json import JsonFormatter

JSON = "json"
CONSOLE = "console"
FIELDS = ("request_id", "task_id", "event_id", "source", "kind")
_CONTEXT: dict[str, ContextVar[Any]] = {name: ContextVar(name, default=None) for name in FIELDS}
# An incoming X-Request-ID is honoured when it is this: short, and nothing a log line could
# be forged with (no spaces, quotes or control characters).
_SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:/+=-]{1,128}")


def current(name: str) -> Any:
    """The value of context field ``name`` here (``None`` when unset)."""
    return _CONTEXT[name].get()


def context() -> dict[str, Any]:
    """Every context field set here."""
    return {name: var.get() for name, var in _CONTEXT.items() if var.get() is not None}


def bind(**fields: Any) -> dict[str, Token[Any]]:
    """Set context fields until ``unbind`` is given the tokens returned."""
    return {name: _CONTEXT[name].set(value) for name, value in fields.items()}


def unbind(tokens: dict[str, Token[Any]]) -> None:
    """Put back what ``bind`` replaced."""
    for name, token in tokens.items():
        _CONTEXT[name].reset(token)


@contextmanager
def log_context(**fields: Any) -> Iterator[None]:
    """Every line logged in the block (in this thread or task) carries ``fields``."""
    tokens = bind(**fields)
    try:
        yield
    finally:
        unbind(tokens)


def sane_request_id(value: str | None) -> str | None:
    """``value`` if it is usable as a request id as sent, else ``None``."""
    if value and _SANE_REQUEST_ID.fullmatch(value):
        return value
    return None


def identity_hash(value: str) -> str:
    """A short stand-in for an address or a name in a log line: the same input, the same hash."""
    return hashlib.sha256(value.strip().lower().encode()).hexdigest()[:16]


def _install_record_factory() -> None:
    """Make every log record carry the context fields set where it was logged.

    At the record's making, so every handler sees them (Celery's, a test's) and not only
    ours. An ``extra`` naming one of ``FIELDS`` would clash with them: pass context instead.
    """
    previous = logging.getLogRecordFactory()
    if getattr(previous, "_crm_context", False):
        return

    def make(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        for name, var in _CONTEXT.items():
            value = var.get()
            if value is not None:
                setattr(record, name, value)
        return record

    make._crm_context = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(make)


class ConsoleFormatter(logging.Formatter):
    """``time level logger: message`` and then the context fields, ``name=value``."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        fields = [f"{name}={getattr(record, name)}" for name in FIELDS if hasattr(record, name)]
        return f"{line} [{' '.join(fields)}]" if fields else line


def json_formatter(process: str) -> logging.Formatter:
    """One JSON object a line: time, level, logger, message, process, and the context."""
    return JsonFormatter(
        "{asctime}{levelname}{name}{message}{process}",
        style="{",
        rename_fields={"asctime": "time", "levelname": "level", "name": "logger", "process": "pid"},
        static_fields={"service": process},
        timestamp=False,
        datefmt="%Y-%m-%dT%H:%M:%S%z",
    )


class _CrmHandler(logging.StreamHandler):
    """The handler ``configure_logging`` installs (and replaces when called again)."""


def configure_logging(
    *, format: str, level: str | int, process: str, stream: TextIO | None = None
) -> None:
    """Make the root logger write ``format`` lines at ``level`` to stderr, with the context.

    Called again (a second app in one process), it replaces the handler it installed and
    leaves any other alone; ``process`` names the program (``web``, ``worker``) in JSON lines.
    """
    _install_record_factory()
    handler = _CrmHandler(stream or sys.stderr)
    handler.setFormatter(json_formatter(process) if format == JSON else ConsoleFormatter())
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _CrmHandler)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
