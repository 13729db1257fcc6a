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


# The server script itself: the Debian wrapper in /usr/sbin would switch to the rabbitmq user,
# who cannot write a test's temporary folder.
RABBITMQ_SERVER = Path("/usr/lib/rabbitmq/bin/rabbitmq-server")


class PrivateRabbitMQ:
    """A RabbitMQ node of a test's own, never the shared one: its own node name, AMQP and
    distribution ports, data directory and no plugins. ``kill`` is ``kill -9`` of the node;
    ``start`` after it boots the node again on the same data, as a crashed broker restarts
    (durable quorum queues keep what they confirmed; unacknowledged deliveries come again)."""

    def __init__(self, folder: Path) -> None:
        if not RABBITMQ_SERVER.exists():
            unavailable("RabbitMQ", f"{RABBITMQ_SERVER} is not installed")
        self.folder = folder
        self.port = free_port()
        self.name = f"crm-test-{os.getpid()}-{self.port}@localhost"
        self._dist_port = free_port()
        self._process: subprocess.Popen[bytes] | None = None
        self._starts = 0
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "enabled_plugins").write_text("[].\n")

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}//"

    def _env(self) -> dict[str, str]:
        folder = str(self.folder)
        return {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin:/usr/sbin:/sbin"),
            "HOME": folder,  # the Erlang cookie of this node alone
            "LANG": "C.UTF-8",
            "RABBITMQ_NODENAME": self.name,
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(self._dist_port),
            "RABBITMQ_MNESIA_BASE": f"{folder}/mnesia",
            "RABBITMQ_LOG_BASE": f"{folder}/log",
            "RABBITMQ_ENABLED_PLUGINS_FILE": f"{folder}/enabled_plugins",
            "RABBITMQ_PLUGINS_EXPAND_DIR": f"{folder}/plugins",
            "RABBITMQ_CONFIG_FILE": f"{folder}/rabbitmq",  # none: the defaults
        }

    def start(self) -> None:
        import kombu

        self._starts += 1
        log = open(self.folder / f"server-{self._starts}.log", "wb")  # noqa: SIM115
        self._process = subprocess.Popen(
            [str(RABBITMQ_SERVER)],
            env=self._env(),
            cwd=self.folder,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()

        def answers() -> bool:
            try:
                with kombu.Connection(self.url, connect_timeout=1) as conn:
                    conn.connect()
                    return True
            except Exception:
                return False

        # A node boots in 5-30 s, longer on a loaded machine.
        wait_until(answers, timeout=180, what="private RabbitMQ node", interval=0.5)

    def kill(self) -> None:
        """``kill -9`` the node and everything it started."""
        if self._process is not None:
            kill_group(self._process)
            self._process = None
