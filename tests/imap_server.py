"""A real IMAP server for tests: Dovecot from a configuration written into a temporary directory.

The server runs unprivileged as the current user on a free loopback port, with a
``passwd-file`` user database and Maildir storage under the directory; nothing of
the system's Dovecot (``/etc/dovecot``, ``/run/dovecot``) is read or touched. It
can be stopped and started again on the same port and data, for tests of a
server that goes away in the middle of a poll.

Debian: ``apt-get install -y dovecot-imapd`` (Dovecot 2.3).
"""

from __future__ import annotations

import grp
import imaplib
import os
import pwd
import re
import shutil
import signal
import socket
import string
import subprocess
import tempfile
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from email.parser import BytesHeaderParser
from pathlib import Path
from typing import BinaryIO

import pytest

from crm_core.mailboxes.imap_protocol import folder_argument, quoted
from crm_core.mailboxes.models import Mailbox
from crm_core.mailboxes.services import parse_mailbox_url
from tests.services import free_port, unavailable

FIXTURE = Path(__file__).parent / "fixtures" / "imap" / "support_request.eml"

DOVECOT = shutil.which("dovecot") or "/usr/sbin/dovecot"
DOVEADM = shutil.which("doveadm") or "/usr/bin/doveadm"

CONFIG_TEMPLATE = """\
# Written by tests/imap_server.py; everything lives under {root}.
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
info_log_path = {root}/dovecot.log
protocols = imap
listen = 127.0.0.1
{ssl}
# Loopback only, so cleartext logins are fine (Dovecot 2.3 spelling).
disable_plaintext_auth = no
auth_mechanisms = plain login
# Tests try wrong passwords on purpose; the default 2 s penalty only slows them.
auth_failure_delay = 0
default_internal_user = {user}
default_internal_group = {group}
default_login_user = {user}
first_valid_uid = {uid}
last_valid_uid = {uid}
first_valid_gid = {gid}
mail_location = maildir:{root}/mail/%u
mail_max_userip_connections = 100
# Test data need not survive a power cut; fsync only slows bulk APPENDs.
mail_fsync = never
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root}/users
}}
userdb {{
  driver = passwd-file
  args = username_format=%u {root}/users
  default_fields = uid={uid} gid={gid} home={root}/home/%u
}}
namespace inbox {{
  inbox = yes
  separator = /
  mailbox Archive {{
    auto = create
  }}
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {tls_port}
  }}
}}
service pop3-login {{
  inet_listener pop3 {{
    port = 0
  }}
  inet_listener pop3s {{
    port = 0
  }}
}}
service submission-login {{
  inet_listener submission {{
    port = 0
  }}
}}
"""


def support_request(n: int, *, padding: int = 0) -> bytes:
    """Support request number ``n`` (Message-ID ``<request-n@customer.example>``).

    ``padding`` adds that many bytes of body text, for size limits and bulk runs.
    """
    lines = (f"{number:05d} lorem ipsum dolor sit amet\r\n" for number in range(padding // 36 + 1))
    filler = "".join(lines)[:padding]
    # read_bytes, not read_text, which would turn the CRLF line ends into LF.
    text = string.Template(FIXTURE.read_bytes().decode()).substitute(n=n, padding=filler)
    return text.encode()


def message_id_of(raw: bytes) -> str | None:
    """The Message-ID header of a raw message, as written."""
    value = BytesHeaderParser().parsebytes(raw).get("Message-ID")
    return str(value).strip() if value else None


def dovecot_reason() -> str | None:
    """``None`` when Dovecot's IMAP server is installed, else why not."""
    if not os.path.exists(DOVECOT):
        return "the dovecot binary is missing; apt-get install dovecot-imapd"
    if not any(Path(p).exists() for p in ("/usr/lib/dovecot/imap", "/usr/libexec/dovecot/imap")):
        return "Dovecot's imap service is missing; apt-get install dovecot-imapd"
    return None


def unprivileged_account() -> pwd.struct_passwd:
    """Whom Dovecot's processes run as: the current user, or ``dovenull`` when that is root.

    Dovecot refuses to run its login processes, or to open mail, as root.
    """
    if os.getuid() != 0:
        return pwd.getpwuid(os.getuid())
    for candidate in ("dovenull", "nobody"):
        try:
            return pwd.getpwnam(candidate)
        except KeyError:
            continue
    raise RuntimeError("running as root, Dovecot needs an unprivileged user such as dovenull")


@dataclass
class DovecotServer:
    """One private Dovecot: its directory, port, users, and the running master process."""

    root: Path
    port: int = field(default_factory=free_port)
    users: dict[str, str] = field(default_factory=lambda: {"support": "s3cret"})
    host: str = "127.0.0.1"
    process: subprocess.Popen[bytes] | None = None
    # With ``tls``: a self-signed certificate for 127.0.0.1, STARTTLS on ``port``
    # and TLS from the start on ``tls_port``; clients trust ``certificate``.
    tls: bool = False
    tls_port: int = 0

    @property
    def certificate(self) -> Path:
        return self.root / "tls" / "cert.pem"

    def _make_certificate(self) -> str:
        key = self.root / "tls" / "key.pem"
        key.parent.mkdir(exist_ok=True)
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
             "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
             "-keyout", str(key), "-out", str(self.certificate)],
            check=True, capture_output=True,
        )  # fmt: skip
        return f"ssl = yes\nssl_cert = <{self.certificate}\nssl_key = <{key}"

    @property
    def config_path(self) -> Path:
        return self.root / "dovecot.conf"

    def write_config(self) -> None:
        """The configuration and the passwd-file, from ``users``."""
        for sub in ("run", "state", "mail", "home"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        account = unprivileged_account()
        if os.getuid() == 0:
            # The mail processes run as ``account``: it must reach and own its files.
            self.root.chmod(0o711)
            for sub in ("mail", "home"):
                os.chown(self.root / sub, account.pw_uid, account.pw_gid)
        if self.tls and not self.tls_port:
            self.tls_port = free_port()
        values = {
            "ssl": self._make_certificate() if self.tls else "ssl = no",
            "tls_port": self.tls_port,
            "root": self.root,
            "port": self.port,
            "user": account.pw_name,
            "group": grp.getgrgid(account.pw_gid).gr_name,
            "uid": account.pw_uid,
            "gid": account.pw_gid,
        }
        self.config_path.write_text(CONFIG_TEMPLATE.format(**values))
        lines = [f"{name}:{{PLAIN}}{password}::::::" for name, password in self.users.items()]
        (self.root / "users").write_text("\n".join(lines) + "\n")

    def start(self, *, timeout: float = 15.0) -> None:
        """Start the master process in the foreground and wait until the port answers."""
        if not self.config_path.exists():
            self.write_config()
        log = open(self.root / "master.log", "ab")  # noqa: SIM115 - kept for the process's life
        # A process group of its own, so that ``crash`` and ``stop`` reach every child.
        self.process = subprocess.Popen(
            [DOVECOT, "-F", "-c", str(self.config_path)],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while not self._answers():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"Dovecot did not start:\n{self.log_tail()}")
            time.sleep(0.05)

    def stop(self, *, timeout: float = 15.0) -> None:
        """Shut down as an operator would (SIGTERM), then end whatever child lingers.

        Dovecot's master exits at once, but an ``imap`` process may go on serving
        its open connection for a while; those are killed too.
        """
        process, self.process = self.process, None
        if process is None:
            return
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        with suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)

    def crash(self) -> None:
        """Kill the master and every child at once (SIGKILL): open connections drop."""
        process, self.process = self.process, None
        if process is None:
            return
        with suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()

    def restart(self) -> None:
        """Stop and start again on the same port and data."""
        self.stop()
        self.start()

    def _answers(self) -> bool:
        try:
            with socket.create_connection((self.host, self.port), timeout=0.5) as sock:
                return sock.recv(64).startswith(b"* OK")
        except OSError:
            return False

    def log_tail(self, lines: int = 30) -> str:
        text = ""
        for name in ("master.log", "dovecot.log"):
            path = self.root / name
            if path.exists():
                text += path.read_text(errors="replace")
        return "\n".join(text.splitlines()[-lines:])

    def url(self, user: str = "support", folder: str = "INBOX") -> str:
        """An ``imap://`` URL of ``user``'s ``folder`` on this server."""
        return f"imap://{user}:{self.users[user]}@{self.host}:{self.port}/{folder}"

    def mailbox(self, user: str = "support", folder: str = "INBOX", **fields: object) -> Mailbox:
        """An unsaved ``Mailbox`` pointing at ``user``'s ``folder`` here, as the reader takes it."""
        address = parse_mailbox_url(self.url(user))
        values: dict[str, object] = {
            "name": f"{user}-{folder}", "host": address.host, "port": address.port,
            "security": address.security, "username": address.username,
            "password": address.password, "folder": folder, "move_to": None,
            "uidvalidity": None, "last_uid": 0, "enabled": True,
        }  # fmt: skip
        values.update(fields)
        return Mailbox(**values)

    # Helpers for placing and inspecting messages, through IMAP itself.

    @contextmanager
    def client(self, user: str = "support") -> Iterator[imaplib.IMAP4]:
        """A logged-in ``imaplib`` connection."""
        conn = imaplib.IMAP4(self.host, self.port, timeout=30)
        try:
            password = self.users[user]
            if password.isascii():
                conn.login(user, password)
            else:
                credentials = f"\0{user}\0{password}".encode()
                conn.authenticate("PLAIN", lambda _challenge: credentials)
            yield conn
        finally:
            with suppress(imaplib.IMAP4.error, OSError):
                conn.logout()

    def append(
        self, messages: Iterable[bytes], *, user: str = "support", folder: str = "INBOX"
    ) -> int:
        """APPEND each message (unflagged) to ``folder``; how many were appended."""
        count = 0
        with self.client(user) as conn:
            for raw in messages:
                status, data = conn.append(folder, "", None, raw)
                assert status == "OK", data
                count += 1
        return count

    def append_many(
        self,
        messages: Iterable[bytes],
        *,
        user: str = "support",
        folder: str = "INBOX",
        per_command: int = 250,
    ) -> int:
        """APPEND like ``append``, ``per_command`` messages per command (MULTIAPPEND, LITERAL+).

        One APPEND per message costs the server a transaction each, and ``imaplib``
        two round trips; for a mailbox of thousands, this is much faster.
        """
        chunk: list[bytes] = []
        count = 0
        with socket.create_connection((self.host, self.port), timeout=120) as sock:
            replies = sock.makefile("rb")
            replies.readline()
            sock.sendall(f"l LOGIN {quoted(user)} {quoted(self.users[user])}\r\n".encode())
            _await_ok(replies)
            for raw in messages:
                chunk.append(raw)
                if len(chunk) == per_command:
                    count += _multiappend(sock, replies, folder, chunk)
                    chunk = []
            if chunk:
                count += _multiappend(sock, replies, folder, chunk)
            sock.sendall(b"q LOGOUT\r\n")
        return count

    def flags(self, *, user: str = "support", folder: str = "INBOX") -> dict[int, set[str]]:
        """The flags of every message in ``folder``, by UID."""
        with self.client(user) as conn:
            conn.select(folder, readonly=True)
            status, data = conn.uid("FETCH", "1:*", "(FLAGS)")
        assert status == "OK", data
        result: dict[int, set[str]] = {}
        for line in data:
            if not isinstance(line, bytes):
                continue
            match = re.search(rb"UID (\d+).*FLAGS \(([^)]*)\)", line)
            if match:
                result[int(match[1])] = set(match[2].decode().split())
        return result

    def message_count(self, *, user: str = "support", folder: str = "INBOX") -> int:
        with self.client(user) as conn:
            status, data = conn.select(folder, readonly=True)
        assert status == "OK", data
        return int(data[0] or 0)

    def set_uidvalidity(self, value: int, *, user: str = "support", folder: str = "INBOX") -> None:
        """Give ``folder`` a new UIDVALIDITY, as a server does after rebuilding its index."""
        subprocess.run(
            [DOVEADM, "-c", str(self.config_path), "mailbox", "update",
             "-u", user, "--uid-validity", str(value), folder],
            check=True, capture_output=True,
        )  # fmt: skip


def _await_ok(replies: BinaryIO) -> None:
    """Read up to the tagged reply of the last command, which must be OK."""
    while True:
        line = replies.readline()
        if not line:
            raise ConnectionError("the IMAP server closed the connection")
        if not line.startswith(b"*"):
            assert line.split(b" ", 2)[1] == b"OK", line
            return


def _multiappend(sock: socket.socket, replies: BinaryIO, folder: str, chunk: list[bytes]) -> int:
    parts = [f"m APPEND {folder_argument(folder)}".encode()]
    for raw in chunk:
        parts.append(f" {{{len(raw)}+}}\r\n".encode() + raw)
    sock.sendall(b"".join(parts) + b"\r\n")
    _await_ok(replies)
    return len(chunk)


def _fast_tmp(need: int = 256 * 1024 * 1024) -> str | None:
    """``/dev/shm`` when it is writable with room to spare (containers often give 64 MB)."""
    shm = "/dev/shm"
    if not (os.path.isdir(shm) and os.access(shm, os.W_OK)):
        return None
    stats = os.statvfs(shm)
    return shm if stats.f_bavail * stats.f_frsize >= need else None


@contextmanager
def dovecot_server(**kw: object) -> Iterator[DovecotServer]:
    """A running private Dovecot for the duration of the block (skipped or failed if missing).

    Its directory comes from ``mkdtemp`` rather than pytest's ``tmp_path``: under
    root, Dovecot's unprivileged processes must be able to reach it. It is on
    ``/dev/shm`` where there is one, because creating thousands of Maildir files
    on a busy disk makes a bulk test spend its time in setup.
    """
    reason = dovecot_reason()
    if reason:
        unavailable("Dovecot", reason)
    root = Path(tempfile.mkdtemp(prefix="crm-dovecot-", dir=_fast_tmp()))
    server = DovecotServer(root=root, **kw)  # type: ignore[arg-type]
    try:
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(name="imap_server")
def imap_server_fixture() -> Iterator[DovecotServer]:
    """A private Dovecot with one user, ``support``, whose INBOX is empty.

    Test modules import ``imap_server_fixture`` to use the fixture ``imap_server``.
    """
    with dovecot_server() as server:
        yield server
