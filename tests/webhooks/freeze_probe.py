"""A WSGI app that answers how many objects its process has frozen (see test_gunicorn_conf)."""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterable
from typing import Any

import webhooks.app  # noqa: F401  (a worker that has loaded what the real one loads)


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [str(gc.get_freeze_count()).encode()]
