"""A private PostgreSQL server for fault tests: a cluster of its own, in a temporary directory.

A test may stop and start it at will; the shared server on 5432 is never touched.
The cluster runs as the ``postgres`` user when the tests run as root (PostgreSQL
refuses to run as root).
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.services import free_port, unavailable


def _bin_dir() -> Path | None:
    on_path = shutil.which("pg_ctl")
    if on_path:
        return Path(on_path).parent
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"))
    return versions[-1].parent if versions else None


class PrivatePostgres:
    """``initdb`` into a new directory under ``parent``, then ``pg_ctl start``/``stop`` on a
    free loopback port. The directory is removed by ``remove()``."""

    def __init__(self, parent: Path, *, durable: bool = False) -> None:
        bin_dir = _bin_dir()
        if bin_dir is None:
            unavailable("PostgreSQL binaries (initdb, pg_ctl)", "not installed")
        self.bin = bin_dir
        # Not under pytest's tmp_path: the postgres user must be able to reach it.
        directory = Path(tempfile.mkdtemp(prefix="crm-pg-", dir=parent))
        directory.chmod(0o755)
        self.directory = directory
        self.data = directory / "data"
        self.log = directory / "server.log"
        self.port = free_port()
        # Tests need no crash safety from a throwaway cluster; a benchmark does.
        self.durable = durable
        self._as_user: list[str] = []
        if os.geteuid() == 0:
            self._as_user = ["runuser", "-u", "postgres", "--"]
            account = pwd.getpwnam("postgres")
            os.chown(directory, account.pw_uid, account.pw_gid)

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *command: str) -> None:
        subprocess.run([*self._as_user, *command], check=True, capture_output=True, timeout=120)

    def init(self) -> None:
        self._run(
            str(self.bin / "initdb"), "-D", str(self.data), "-U", "postgres",
            "--auth=trust", "--no-sync", "-E", "UTF8",
        )  # fmt: skip

    def start(self) -> None:
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.data}"
        if not self.durable:
            options += " -c fsync=off"
        self._run(
            str(self.bin / "pg_ctl"), "-D", str(self.data), "-l", str(self.log),
            "-o", options, "-w", "-t", "60", "start",
        )  # fmt: skip

    def stop(self) -> None:
        """A fast shutdown: every connection is cut, as in a restart of the server."""
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")

    def running(self) -> bool:
        return (self.data / "postmaster.pid").exists()

    def remove(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)


@contextmanager
def private_postgres(
    parent: Path | None = None, *, durable: bool = False
) -> Iterator[PrivatePostgres]:
    """A started private PostgreSQL for the block (under ``parent``, default the system's
    temporary directory), stopped and removed afterwards."""
    server = PrivatePostgres(parent or Path(tempfile.gettempdir()), durable=durable)
    try:
        server.init()
        server.start()
        yield server
    finally:
        if server.running():
            server.stop()
        server.remove()
