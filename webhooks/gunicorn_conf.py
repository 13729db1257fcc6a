"""gunicorn hooks for the web process: ``gunicorn --config python:webhooks.gunicorn_conf``.

The Procfile, the benchmark and the integration tests pass the same file, so
what is measured and tested is what runs. Settings stay on the command line;
only hooks live here.
"""

from __future__ import annotations

import gc
import logging
from typing import Any

log = logging.getLogger(__name__)


def post_worker_init(worker: Any) -> None:
    """Take what the worker loaded at start out of the garbage collector's reach.

    By now the worker has imported every module and built the app: about
    130,000 objects that live as long as the process. Left in the collector's
    generations, each full collection walks all of them with the GIL held,
    40 to 110 ms during which none of the worker's request threads runs.
    ``gc.freeze()`` moves them to a permanent generation the collector skips;
    objects created later are collected as before.
    """
    gc.freeze()
    log.debug("worker %s: %d objects frozen", getattr(worker, "pid", "?"), gc.get_freeze_count())
