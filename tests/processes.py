"""Real processes for integration tests: Celery workers, gunicorn, a private Redis, `crm dev`."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

import requests

from tests.keyring import TEST_ENCRYPTION_KEYS
from tests.services import free_port, unavailable

T = TypeVar("T")

REPO = Path(__file__).resolve().parents[1]


def service_env(**overrides: str) -> dict[str, str]:
    """The environment for a child process: ours minus CRM_* settings, plus ``overrides``.

    The encryption key stays: the child reads the secrets the test wrote.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRM_")}
    env["CRM_ENCRYPTION_KEYS"] = TEST_ENCRYPTION_KEYS
    env.update(overrides)
    env["PYTHONPATH"] = str(REPO)
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


def stop(process: subprocess.Popen[bytes], *, grace: float = 20.0, kill: bool = False) -> None:
    """SIGTERM (a warm shutdown) or SIGKILL, then SIGKILL after ``grace`` seconds."""
    if process.poll() is None:
        process.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
        try:
            process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _log_target(log_path: Path | None) -> int | object:
    return open(log_path, "wb") if log_path else subprocess.DEVNULL


@contextmanager
def celery_worker(
    env: dict[str, str],
    *,
    queues: str = "ingest,campaigns,followups,maintenance,mailboxes",
    concurrency: int = 2,
    pool: str = "prefork",
    beat: bool = False,
    log_path: Path | None = None,
) -> Iterator[subprocess.Popen[bytes]]:
    """A real ``celery worker`` process (with embedded beat if asked) for the block.

    ``pool="threads"`` is how the Procfile's ``sender`` runs the campaigns queue.
    """
    command = [
        sys.executable, "-m", "celery", "--app", "workers.app", "worker", "--pool", pool,
        "--queues", queues, "--concurrency", str(concurrency), "--loglevel", "INFO",
        "--without-gossip", "--without-mingle", "--hostname", f"test-{free_port()}@%h",
    ]  # fmt: skip
    if beat:
        schedule = Path(env.get("CRM_VAR_DIR", "/tmp")) / f"beat-{free_port()}"
        command += ["--beat", "--schedule", str(schedule)]
    log = _log_target(log_path)
    # A session of its own, so a test can kill -9 the worker and its pool together.
    process = subprocess.Popen(
        command,
        env=env,
        cwd=REPO,
        stdout=log,  # type: ignore[arg-type]
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        yield process
    finally:
        stop(process)
        if log_path:
            log.close()  # type: ignore[union-attr]


def kill_group(process: subprocess.Popen[bytes]) -> None:
    """``kill -9`` a process started in its own session, and every child it has."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


@contextmanager
def web_app(env: dict[str, str], *, workers: int = 1, threads: int = 4) -> Iterator[str]:
    """gunicorn serving the web app; yields its base URL."""
    port = free_port()
    command = [
        sys.executable, "-m", "gunicorn", "--config", "python:webhooks.gunicorn_conf",
        "--workers", str(workers), "--threads", str(threads),
        "--worker-class", "gthread", "--bind", f"127.0.0.1:{port}", "webhooks.app:create_app()",
    ]  # fmt: skip
    process = subprocess.Popen(command, cwd=REPO, env=env)
    base = f"http://127.0.0.1:{port}"

    def healthy() -> bool:
        try:
            return requests.get(f"{base}/healthz", timeout=1).ok
        except requests.RequestException:
            return False

    try:
        # Minutes, not seconds, on a machine as loaded as a shared CI runner can be.
        wait_until(healthy, timeout=120, what="gunicorn", interval=0.2)
        yield base
    finally:
        stop(process)


def start_redis(port: int) -> subprocess.Popen[bytes]:
    """A private, non-persistent redis-server on ``port`` (never the shared one)."""
    binary = shutil.which("redis-server")
    if binary is None:
        unavailable("redis-server", "not installed")
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    import redis

    def answers() -> bool:
        try:
            return bool(redis.Redis(port=port, socket_connect_timeout=0.5).ping())
        except redis.RedisError:
            return False

    wait_until(answers, timeout=20, what="private redis-server", interval=0.2)
    return process
