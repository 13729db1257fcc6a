"""Processes for end-to-end intake runs: a private Redis, the web app, a worker."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import requests

from tests.services import free_port, unavailable

ROOT = Path(__file__).resolve().parents[2]


def wait_until(check, *, timeout: float, what: str, interval: float = 0.2):  # type: ignore[no-untyped-def]
    """Poll ``check`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


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

    wait_until(answers, timeout=20, what="private redis-server")
    return process


def stop(process: subprocess.Popen[bytes], *, kill: bool = False) -> None:
    if process.poll() is None:
        process.kill() if kill else process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def child_env(**values: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRM_")}
    env.update(values)
    env["PYTHONPATH"] = str(ROOT)
    return env


@contextmanager
def web_app(env: dict[str, str]) -> Iterator[str]:
    """gunicorn serving the web app; yields its base URL."""
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "--workers",
            "1",
            "--threads",
            "4",
            "--bind",
            f"127.0.0.1:{port}",
            "webhooks.app:create_app()",
        ],
        cwd=ROOT,
        env=env,
    )
    base = f"http://127.0.0.1:{port}"

    def healthy() -> bool:
        try:
            return requests.get(f"{base}/healthz", timeout=1).ok
        except requests.RequestException:
            return False

    try:
        wait_until(healthy, timeout=30, what="gunicorn")
        yield base
    finally:
        stop(process)


@contextmanager
def celery_worker(env: dict[str, str]) -> Iterator[subprocess.Popen[bytes]]:
    """A real Celery worker with embedded beat (so the sweeper runs)."""
    schedule = Path(env.get("CRM_VAR_DIR", "/tmp")) / f"beat-{free_port()}"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "--app",
            "workers.app",
            "worker",
            "--beat",
            "--schedule",
            str(schedule),
            "--concurrency",
            "2",
            "--loglevel",
            "INFO",
            "--queues",
            "ingest,maintenance",
        ],
        cwd=ROOT,
        env=env,
    )
    try:
        yield process
    finally:
        stop(process)
