"""Real processes for integration tests: Celery workers and the dev server."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")

REPO = Path(__file__).resolve().parents[1]


def service_env(**overrides: str) -> dict[str, str]:
    """The environment for a child process: ours minus CRM_* settings, plus ``overrides``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRM_")}
    env.update(overrides)
    return env


def wait_until(check: Callable[[], T], *, timeout: float, what: str, interval: float = 0.1) -> T:
    """Poll ``check`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def stop(process: subprocess.Popen[bytes], *, grace: float = 20.0) -> None:
    """SIGTERM (a warm shutdown), then SIGKILL after ``grace`` seconds."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextmanager
def celery_worker(
    env: dict[str, str],
    *,
    queues: str = "ingest,campaigns,followups,maintenance",
    concurrency: int = 2,
    log_path: Path | None = None,
) -> Iterator[subprocess.Popen[bytes]]:
    """A real ``celery worker`` process for the duration of the block."""
    command = [
        sys.executable, "-m", "celery", "--app", "workers.app", "worker",
        "--queues", queues, "--concurrency", str(concurrency), "--loglevel", "INFO",
        "--without-gossip", "--without-mingle", "--hostname", f"test-{os.getpid()}@%h",
    ]  # fmt: skip
    log = open(log_path, "wb") if log_path else subprocess.DEVNULL  # noqa: SIM115
    process = subprocess.Popen(command, env=env, cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
    try:
        yield process
    finally:
        stop(process)
        if log_path:
            log.close()  # type: ignore[union-attr]
