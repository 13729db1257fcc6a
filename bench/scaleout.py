"""Scale-out under faults: 2 web processes, 4 workers, PostgreSQL, a worker killed (not a test).

    .venv/bin/python -m bench.scaleout [--webhooks 50000] [--senders 24] [--addresses 20000]
                                       [--broker redis|rabbitmq] [--postgres private|shared]
                                       [--no-faults]

Starts two gunicorn web processes (one worker of four threads each, on two
ports, as two machines behind a load balancer would be), four Celery worker
processes on the ``ingest`` queue (prefork, one child each) and one beat, on a
PostgreSQL database and a private redis-server (or a RabbitMQ virtual host of
its own). ``--senders`` threads post ``--webhooks`` signed leads over
``--addresses`` addresses at 500 company domains, each sender on its own
keep-alive connection, alternating between the two web processes, and posting
a webhook again until it is acknowledged (202, or 200 for a duplicate), as a
webhook provider does. Meanwhile:

* at 30 % acknowledged, one worker (parent and child) is killed with SIGKILL
  and started again 3 s later;
* at 60 % acknowledged, PostgreSQL is restarted: ``--postgres private`` runs a
  cluster of the benchmark's own (initdb in a temporary directory) and
  restarts it with ``pg_ctl restart -m fast``; ``--postgres shared`` uses a
  scratch database on the shared server and restarts that server with
  ``pg_ctlcluster`` (every other user of it sees the restart too).

``--no-faults`` runs the same load with neither fault: the baseline.

When every webhook is acknowledged it waits for the backlog to drain, then
checks: every acknowledged webhook is in the inbox exactly once, every event
is processed, one ``lead_captured`` activity per event, one contact per
address and one company per domain. It prints the intake rate (acknowledged/s
while sending), the end-to-end rate (webhooks/s from the first post to an
empty backlog), the answers the senders got and the checks. Exit status 1 when
a check fails.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from sqlalchemy import func, select

from bench.intake import ROOT, free_port, private_redis, scratch_database, wait_for

DOMAINS = 500


def child_env(database_url: str, broker_url: str, var_dir: Path, key: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRM_")}
    env.update(
        CRM_DATABASE_URL=database_url,
        CRM_BROKER_URL=broker_url,
        CRM_RATELIMIT_URL="memory://",
        CRM_RATE_LIMIT_PER_MINUTE="0",
        CRM_SECRET_KEY="scaleout-secret",
        CRM_ENCRYPTION_KEYS=key,
        CRM_VAR_DIR=str(var_dir),
        # A claim left by the killed worker is released after the task time limit.
        CRM_TASK_TIME_LIMIT_SECONDS="30",
        CRM_SWEEP_INTERVAL_SECONDS="2",
        CRM_SWEEP_GRACE_SECONDS="5",
        CRM_SWEEP_REPUBLISH_SECONDS="10",
        PYTHONPATH=str(ROOT),
    )
    return env


def start_web(env: dict[str, str], log: Path) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    command = [
        sys.executable, "-m", "gunicorn", "--config", "python:webhooks.gunicorn_conf",
        "--workers", "1", "--threads", "4", "--worker-class", "gthread",
        "--bind", f"127.0.0.1:{port}", "webhooks.app:create_app()",
    ]  # fmt: skip
    process = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT
    )

    def healthy() -> bool:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        try:
            conn.request("GET", "/healthz")
            return conn.getresponse().status == 200
        finally:
            conn.close()

    wait_for(healthy, "gunicorn", timeout=60)
    return process, port


def start_worker(env: dict[str, str], name: str, log: Path) -> subprocess.Popen[bytes]:
    command = [
        sys.executable, "-m", "celery", "--app", "workers.app", "worker", "--pool", "prefork",
        "--queues", "ingest,maintenance", "--concurrency", "1", "--loglevel", "INFO",
        "--without-gossip", "--without-mingle", "--hostname", f"{name}@%h",
    ]  # fmt: skip
    return subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip


def start_beat(env: dict[str, str], var_dir: Path, log: Path) -> subprocess.Popen[bytes]:
    command = [
        sys.executable, "-m", "celery", "--app", "workers.app", "beat", "--loglevel", "INFO",
        "--schedule", str(var_dir / "beat-schedule"),
    ]  # fmt: skip
    return subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip


def terminate(process: subprocess.Popen[bytes], grace: float = 20.0) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL) if _own_group(process) else process.kill()
            process.wait()


def _own_group(process: subprocess.Popen[bytes]) -> bool:
    try:
        return os.getpgid(process.pid) == process.pid
    except ProcessLookupError:
        return False


class Senders:
    """Threads that post every webhook until it is acknowledged, counting the answers."""

    def __init__(self, ports: list[int], secret: str, webhooks: int, addresses: int) -> None:
        self.ports, self.secret = ports, secret
        self.webhooks, self.addresses = webhooks, addresses
        self.next = 0
        self.acknowledged = 0
        self.answers: Counter[int | str] = Counter()
        self.lock = threading.Lock()

    def _take(self) -> int | None:
        with self.lock:
            if self.next >= self.webhooks:
                return None
            self.next += 1
            return self.next - 1

    def _request(self, n: int) -> tuple[dict[str, str], bytes]:
        from crm_core.base.signing import sign

        person = n % self.addresses
        body = json.dumps(
            {
                "email": f"person{person}@company{person % DOMAINS}.example",
                "full_name": f"Person {person}",
                "company": f"Company {person % DOMAINS}",
            }
        ).encode()
        msg_id = f"scale-{n}"
        ts = int(time.time())
        headers = {
            "Content-Type": "application/json",
            "webhook-id": msg_id,
            "webhook-timestamp": str(ts),
            "webhook-signature": sign(self.secret, msg_id=msg_id, timestamp=ts, body=body),
        }
        return headers, body

    def run(self, index: int) -> None:
        port = self.ports[index % len(self.ports)]
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        while (n := self._take()) is not None:
            backoff = 0.1
            while True:
                headers, body = self._request(n)
                try:
                    conn.request("POST", "/webhooks/scale/leads", body=body, headers=headers)
                    response = conn.getresponse()
                    response.read()
                    answer: int | str = response.status
                except (OSError, http.client.HTTPException) as exc:
                    answer = type(exc).__name__
                    conn.close()
                    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                with self.lock:
                    self.answers[answer] += 1
                    if answer in (200, 202):
                        self.acknowledged += 1
                if answer in (200, 202):
                    break
                time.sleep(backoff)
                backoff = min(backoff * 2, 2.0)
        conn.close()


@contextmanager
def postgres(kind: str, workdir: Path) -> Iterator[tuple[str, Callable[[], None]]]:
    """A database URL and how to restart its server."""
    if kind == "private":
        from tests.private_postgres import private_postgres

        with private_postgres(workdir, durable=True) as server:

            def restart_private() -> None:
                server.stop()
                server.start()

            yield server.url, restart_private
        return
    version = sorted(os.listdir("/etc/postgresql"), key=lambda v: [int(p) for p in v.split(".")])
    with scratch_database() as url:

        def restart_shared() -> None:
            subprocess.run(
                ["pg_ctlcluster", "--skip-systemctl-redirect", version[-1], "main", "restart",
                 "-m", "fast"],
                check=True,
            )  # fmt: skip

        yield url, restart_shared


@contextmanager
def broker(kind: str) -> Iterator[str]:
    if kind == "redis":
        with private_redis() as url:
            yield url
        return
    name = f"crm-scaleout-{uuid.uuid4().hex[:8]}"
    subprocess.run(["rabbitmqctl", "-q", "add_vhost", name], check=True)
    subprocess.run(
        ["rabbitmqctl", "-q", "set_permissions", "-p", name, "guest", ".*", ".*", ".*"], check=True
    )
    try:
        yield f"amqp://guest:guest@127.0.0.1:5672/{name}"
    finally:
        subprocess.run(["rabbitmqctl", "-q", "delete_vhost", name], check=False)


def backlog(engine) -> tuple[int, int]:  # type: ignore[no-untyped-def]
    """(events in the inbox, events not yet processed); (-1, -1) while the database is away."""
    from crm_core.ingestion.models import EventStatus, InboxEvent

    try:
        with engine.connect() as conn:
            total = conn.scalar(select(func.count()).select_from(InboxEvent)) or 0
            waiting = conn.scalar(
                select(func.count()).where(InboxEvent.status != EventStatus.PROCESSED)
            )
            return total, waiting or 0
    except Exception:
        return -1, -1


def checks(engine, args: argparse.Namespace) -> dict[str, bool]:  # type: ignore[no-untyped-def]
    from crm_core import models as m
    from crm_core.ingestion.models import EventStatus, InboxEvent

    with engine.connect() as conn:
        ids = conn.scalar(select(func.count(func.distinct(InboxEvent.webhook_id))))
        events = conn.scalar(select(func.count()).select_from(InboxEvent))
        statuses = dict(
            conn.execute(select(InboxEvent.status, func.count()).group_by(InboxEvent.status)).all()
        )
        per_event = conn.execute(
            select(func.count())
            .select_from(m.Activity)
            .where(m.Activity.type == "lead_captured")
            .group_by(m.Activity.event_id)
            .having(func.count() != 1)
        ).all()
        captured = conn.scalar(
            select(func.count(func.distinct(m.Activity.event_id))).where(
                m.Activity.type == "lead_captured"
            )
        )
        contacts = conn.scalar(select(func.count()).select_from(m.Contact))
        distinct_contacts = conn.scalar(
            select(func.count(func.distinct(m.Contact.email_normalized)))
        )
        companies = conn.scalar(
            select(func.count()).select_from(m.Customer).where(m.Customer.kind == "company")
        )
    expected_people = min(args.webhooks, args.addresses)
    expected_companies = min(expected_people, DOMAINS)
    print(f"  inbox: {events} events, {ids} webhook ids, statuses {statuses}")
    print(f"  lead_captured on {captured} events, {len(per_event)} events with other than one")
    print(f"  contacts {contacts} ({distinct_contacts} addresses), companies {companies}")
    return {
        "every acknowledged webhook stored once": events == ids == args.webhooks,
        "every event processed": statuses == {EventStatus.PROCESSED: args.webhooks},
        "one lead_captured per event": captured == args.webhooks and not per_event,
        "one contact per address": contacts == distinct_contacts == expected_people,
        "one company per domain": companies == expected_companies,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--webhooks", type=int, default=50_000)
    parser.add_argument("--senders", type=int, default=24)
    parser.add_argument("--addresses", type=int, default=20_000)
    parser.add_argument("--broker", choices=["redis", "rabbitmq"], default="redis")
    parser.add_argument("--postgres", choices=["private", "shared"], default="private")
    parser.add_argument("--no-faults", action="store_true")
    parser.add_argument("--drain-timeout", type=float, default=1800.0)
    args = parser.parse_args()

    from crm_core import migrate
    from crm_core.db import make_engine, make_session_factory
    from crm_core.encryption.keyring import Keyring
    from crm_core.ingestion import services

    with ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="scaleout-")))
        os.chmod(workdir, 0o755)
        database_url, restart_postgres = stack.enter_context(postgres(args.postgres, workdir))
        broker_url = stack.enter_context(broker(args.broker))
        migrate.upgrade(database_url)
        key = Keyring.generate_key()
        engine = make_engine(database_url, keyring=Keyring([key]), pre_ping=True)
        stack.callback(engine.dispose)
        with make_session_factory(engine).begin() as session:
            _, secret = services.create_source(session, name="scale")
        var_dir = workdir / "var"
        var_dir.mkdir()
        env = child_env(database_url, broker_url, var_dir, key)
        logs = Path(os.environ.get("SCALEOUT_LOGS", workdir))
        webs = [start_web(env, logs / f"web{i}.log") for i in range(2)]
        for process, _ in webs:
            stack.callback(terminate, process)
        workers = [start_worker(env, f"w{i}", logs / f"worker{i}.log") for i in range(4)]
        stack.callback(lambda: [terminate(w) for w in workers])
        stack.enter_context(_terminated(start_beat(env, var_dir, logs / "beat.log")))
        print(
            f"{args.webhooks} webhooks, {args.senders} senders, 2 web, 4 workers, "
            f"broker {args.broker}, PostgreSQL {args.postgres}, "
            f"faults {'none' if args.no_faults else 'kill -9 of a worker, PostgreSQL restart'}"
        )

        senders = Senders([port for _, port in webs], secret, args.webhooks, args.addresses)
        threads = [
            threading.Thread(target=senders.run, args=(i,), daemon=True)
            for i in range(args.senders)
        ]
        started = time.monotonic()
        for thread in threads:
            thread.start()
        killed = restarted = False
        while any(thread.is_alive() for thread in threads):
            time.sleep(0.2)
            done = senders.acknowledged / args.webhooks
            if not args.no_faults and not killed and done >= 0.3:
                victim = workers[0]
                os.killpg(victim.pid, signal.SIGKILL)
                victim.wait()
                print(f"  {time.monotonic() - started:6.1f} s: worker w0 killed (kill -9)")
                time.sleep(3)
                workers[0] = start_worker(env, "w0b", logs / "worker0b.log")
                print(f"  {time.monotonic() - started:6.1f} s: worker w0 started again")
                killed = True
            if not args.no_faults and not restarted and done >= 0.6:
                before = time.monotonic()
                restart_postgres()
                print(
                    f"  {before - started:6.1f} s: PostgreSQL restarted "
                    f"({time.monotonic() - before:.1f} s)"
                )
                restarted = True
        sent_at = time.monotonic()
        print(f"  {sent_at - started:6.1f} s: all {args.webhooks} acknowledged")
        deadline = sent_at + args.drain_timeout
        while True:
            total, waiting = backlog(engine)
            if total == args.webhooks and waiting == 0:
                break
            if time.monotonic() > deadline:
                print(f"  backlog not drained after {args.drain_timeout:.0f} s: {waiting} waiting")
                break
            time.sleep(1)
        drained_at = time.monotonic()
        intake_rate = args.webhooks / (sent_at - started)
        end_to_end = args.webhooks / (drained_at - started)
        print(f"  {drained_at - started:6.1f} s: backlog {backlog(engine)[1]}")
        print(f"answers: {dict(senders.answers)}")
        print(
            f"intake: {intake_rate:,.0f} acknowledged/s; end to end: {end_to_end:,.0f} webhooks/s"
        )
        results = checks(engine, args)
        for name, ok in results.items():
            print(f"  [{'ok' if ok else 'FAILED'}] {name}")
        if not all(results.values()):
            sys.exit(1)


@contextmanager
def _terminated(process: subprocess.Popen[bytes]) -> Iterator[subprocess.Popen[bytes]]:
    try:
        yield process
    finally:
        terminate(process)


if __name__ == "__main__":
    main()
