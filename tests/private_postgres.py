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
    """``initdb`` into ``directory``, then ``pg_ctl start``/``stop`` on a free loopback port."""

    def __init__(self, directory: Path) -> None:
        bin_dir = _bin_dir()
        if bin_dir is None:
            unavailable("PostgreSQL binaries (initdb, pg_ctl)", "not installed")
        self.bin = bin_dir
        self.data = directory / "data"
        self.log = directory / "server.log"
        self.port = free_port()
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
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.data} -c fsync=off"
        self._run(
            str(self.bin / "pg_ctl"), "-D", str(self.data), "-l", str(self.log),
            "-o", options, "-w", "-t", "60", "start",
        )  # fmt: skip

    def stop(self) -> None:
        """A fast shutdown: every connection is cut, as in a restart of the server."""
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")

    def running(self) -> bool:
        return (self.data / "postmaster.pid").exists()


@contextmanager
def private_postgres(directory: Path) -> Iterator[PrivatePostgres]:
    """A started private PostgreSQL for the block, stopped afterwards whatever happened."""
    server = PrivatePostgres(directory)
    server.init()
    server.start()
    try:
        yield server
    finally:
        if server.running():
            server.stop()
