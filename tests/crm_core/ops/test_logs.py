"""Log lines: JSON or console, each with the context of what the code was doing."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from crm_core.ops import logs


@pytest.fixture
def stream() -> Iterator[io.StringIO]:
    out = io.StringIO()
    root = logging.getLogger()
    level = root.level
    yield out
    for handler in [h for h in root.handlers if isinstance(h, logs._CrmHandler)]:
        root.removeHandler(handler)
    root.setLevel(level)


def test_a_json_line_carries_the_context_it_was_logged_in(stream: io.StringIO) -> None:
    logs.configure_logging(format=logs.JSON, level="INFO", process="worker", stream=stream)
    with logs.log_context(request_id="req-1", task_id="task-9"):
        with logs.log_context(event_id=42, source="shop", kind="leads"):
            logging.getLogger("crm.test").info("event %s processed", 42)
        logging.getLogger("crm.test").warning("after the event")
    first, second = (json.loads(line) for line in stream.getvalue().splitlines())
    assert first["message"] == "event 42 processed"
    assert first["level"] == "INFO"
    assert first["logger"] == "crm.test"
    assert first["service"] == "worker"
    assert (first["event_id"], first["source"], first["kind"]) == (42, "shop", "leads")
    assert (first["request_id"], first["task_id"]) == ("req-1", "task-9")
    assert "event_id" not in second
    assert second["request_id"] == "req-1"
    assert logs.context() == {}


def test_a_console_line_is_readable_with_its_context_at_the_end(stream: io.StringIO) -> None:
    logs.configure_logging(format=logs.CONSOLE, level="INFO", process="web", stream=stream)
    with logs.log_context(event_id=7, source="shop"):
        logging.getLogger("crm.test").info("stored")
    line = stream.getvalue().strip()
    assert line.endswith("INFO crm.test: stored [event_id=7 source=shop]")
    assert not line.startswith("{")


def test_configuring_again_replaces_the_handler_it_installed(stream: io.StringIO) -> None:
    logs.configure_logging(format=logs.JSON, level="INFO", process="web", stream=io.StringIO())
    logs.configure_logging(format=logs.JSON, level="INFO", process="web", stream=stream)
    logging.getLogger("crm.test").info("once")
    assert len(stream.getvalue().splitlines()) == 1
    installed = [h for h in logging.getLogger().handlers if isinstance(h, logs._CrmHandler)]
    assert len(installed) == 1


@pytest.mark.parametrize(
    ("sent", "kept"),
    [
        ("3f2a-11ee-b1c2", "3f2a-11ee-b1c2"),
        ("req_01HZX:web/2=", "req_01HZX:web/2="),
        ("", None),
        (None, None),
        ("two words", None),
        ('quote"d', None),
        ("line\nbreak", None),
        ("x" * 129, None),
    ],
)
def test_only_a_sane_request_id_is_honoured(sent: str | None, kept: str | None) -> None:
    assert logs.sane_request_id(sent) == kept


def test_an_identity_hash_is_stable_and_hides_the_address() -> None:
    hashed = logs.identity_hash("Ada@Example.com")
    assert hashed == logs.identity_hash(" ada@example.com ")
    assert "ada" not in hashed
    assert len(hashed) == 16
