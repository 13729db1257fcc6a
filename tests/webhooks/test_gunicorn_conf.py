"""The gunicorn hooks the Procfile loads (``--config python:webhooks.gunicorn_conf``)."""

from __future__ import annotations

import gc
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import requests

from tests.processes import REPO, stop, wait_until
from tests.services import free_port
from webhooks import gunicorn_conf


def test_post_worker_init_takes_loaded_objects_out_of_the_collectors_generations() -> None:
    loaded = [object()]  # a container the collector tracks, like the app's objects
    gc.unfreeze()
    try:
        gunicorn_conf.post_worker_init(SimpleNamespace(pid=os.getpid()))
        assert gc.get_freeze_count() > 0
        assert not any(obj is loaded for obj in gc.get_objects())
    finally:
        gc.unfreeze()
    assert any(obj is loaded for obj in gc.get_objects())


def test_a_gunicorn_started_with_the_config_freezes_and_opens_no_control_socket(
    tmp_path: Path,
) -> None:
    port = free_port()
    env = {**os.environ, "HOME": str(tmp_path), "XDG_RUNTIME_DIR": str(tmp_path)}
    command = [
        sys.executable, "-m", "gunicorn", "--config", "python:webhooks.gunicorn_conf",
        "--worker-class", "gthread", "--workers", "1", "--threads", "2",
        "--bind", f"127.0.0.1:{port}", "tests.webhooks.freeze_probe:app",
    ]  # fmt: skip
    process = subprocess.Popen(command, cwd=REPO, env=env)

    def frozen() -> str | None:
        try:
            return requests.get(f"http://127.0.0.1:{port}/", timeout=1).text
        except requests.RequestException:  # not listening yet, or still loading
            return None

    try:
        # The app and every module the worker imported; without the hook, 0.
        assert int(wait_until(frozen, timeout=30, what="gunicorn")) > 10_000
        # gunicorn's default would be $XDG_RUNTIME_DIR/gunicorn.ctl.
        assert list(tmp_path.iterdir()) == []
    finally:
        stop(process)
