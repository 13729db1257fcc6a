"""gunicorn hooks for the web process: ``gunicorn --config python:webhooks.gunicorn_conf``.

The Procfile, the benchmark and the integration tests pass the same file, so
what is measured and tested is what runs. What differs between deployments
(workers, threads, the address) stays on the command line; what every
deployment wants alike lives here.
"""

from __future__ import annotations

import gc
import logging
import os
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

# gunicorn 25.1 and later open a control socket for ``gunicornc`` (resize,
# reload, stop) at one path per user, $XDG_RUNTIME_DIR/gunicorn.ctl or
# ~/.gunicorn/gunicorn.ctl, which every gunicorn of that user binds in turn.
# Nothing here uses it: without it, no other process can resize or stop this
# one, and a second gunicorn on the machine cannot take its place. (Older
# gunicorns skip a setting they do not know.)
control_socket_disable = True


# The access log's line: the path without its query string (a query can hold an address),
# and the request id that the app's own lines about the request carry.
access_log_format = '%(h)s "%(m)s %(U)s %(H)s" %(s)s %(B)s %(M)sms %({x-request-id}o)s'


def _json_logging() -> dict[str, Any] | None:
    """gunicorn's own lines (the master's, the access log) as JSON, when the app's are."""
    from crm_core.config import get_settings

    if get_settings().resolved_log_format() != "json":
        return None
    stream = {"class": "logging.StreamHandler", "formatter": "json"}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        # The app adds its own handler to the root logger in each worker (crm_core.ops.logs).
        "root": {"level": "INFO", "handlers": []},
        "loggers": {
            "gunicorn.error": {"level": "INFO", "handlers": ["error"], "propagate": False},
            "gunicorn.access": {"level": "INFO", "handlers": ["access"], "propagate": False},
        },
        "handlers": {
            "error": {**stream, "stream": "ext://sys.stderr"},
            "access": {**stream, "stream": "ext://sys.stdout"},
        },
        "formatters": {"json": {"()": "crm_core.ops.logs.json_formatter", "process": "web"}},
    }


logconfig_dict = _json_logging() or {}


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


def on_starting(_server: Any) -> None:
    """Before the first worker: where the workers share their metrics, and no stale files there.

    The workers count into files (prometheus-client's multiprocess mode), so /metrics answers
    for all of them, whichever serves it: ``var/metrics/web`` unless PROMETHEUS_MULTIPROC_DIR
    says otherwise. The workers inherit the environment when they are forked.
    """
    default = Path(os.environ.get("CRM_VAR_DIR", "var")) / "metrics" / "web"
    os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", str(default.resolve()))
    from crm_core.ops import metrics

    metrics.remove_stale_files()


def when_ready(_server: Any) -> None:
    """Serve every worker's metrics from the master on ``CRM_METRICS_PORT``, when it is set."""
    from crm_core.config import get_settings
    from crm_core.ops import metrics

    port = get_settings().metrics_port
    if port:
        metrics.serve(port)


def child_exit(_server: Any, worker: Any) -> None:
    """A worker exited: its live gauges no longer count (its counters still do)."""
    from crm_core.ops import metrics

    metrics.process_exited(worker.pid)
