"""Benchmark of a campaign send end to end, beside a raw smtplib loop (not a test).

    .venv/bin/python -m bench.campaign [--recipients 100000] [--raw-messages 20000]
                                       [--pool threads|prefork] [--concurrency N]

It starts a scratch PostgreSQL database (``CRM_TEST_POSTGRES_URL``), a private
redis-server, and an SMTP sink in a separate process (aiosmtpd; it counts
messages and keeps nothing). Then, in the same run:

1. the baseline: ``--raw-messages`` messages built with ``EmailMessage`` (the
   same headers a campaign message carries) and sent by one ``smtplib`` loop
   over one reused connection to the sink;
2. the platform: ``--recipients`` contacts seeded with bulk inserts, a
   campaign to all of them, claimed and materialized by the dispatcher's own
   functions (timed: materialization), then sent by ONE worker (by default
   as the Procfile's ``sender`` runs: four threads; ``--pool prefork`` for a
   process pool) through its send batches: messages/s from the first batch
   published until the campaign is ``sent``, and the worker's peak memory (the
   parent and its pool, sampled every 0.2 s from /proc: RSS and PSS sums).

It prints both rates, their ratio, the materialization time and the peak memory.
"""

from __future__ import annotations

import argparse
import datetime as dt
import multiprocessing
import os
import smtplib
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from email.message import EmailMessage
from email.utils import make_msgid
from typing import Any

from celery import Celery
from sqlalchemy import Engine, insert, text

from bench.intake import ROOT, free_port, private_redis, scratch_database, wait_for

SEED_CHUNK = 20_000


def _sink(port: int, counter: Any, ready: Any) -> None:
    """An aiosmtpd server on ``port`` that counts the messages it accepts."""
    from aiosmtpd.controller import Controller

    class Counting:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            with counter.get_lock():
                counter.value += 1
            return "250 OK"

    controller = Controller(Counting(), hostname="127.0.0.1", port=port)
    controller.start()
    ready.set()
    threading.Event().wait()


@contextmanager
def smtp_sink() -> Iterator[tuple[int, Any]]:
    port = free_port()
    counter = multiprocessing.Value("q", 0)
    ready = multiprocessing.Event()
    process = multiprocessing.Process(target=_sink, args=(port, counter, ready), daemon=True)
    process.start()
    if not ready.wait(30):
        raise SystemExit("the SMTP sink did not start")
    try:
        yield port, counter
    finally:
        process.terminate()
        process.join()


def raw_rate(port: int, count: int) -> float:
    """Messages/s of one smtplib loop over one connection, building each message."""
    started = time.perf_counter()
    with smtplib.SMTP("127.0.0.1", port) as smtp:
        for n in range(count):
            message = EmailMessage()
            message["From"] = "Shop <news@shop.example>"
            message["To"] = f"raw{n}@example.com"
            message["Subject"] = f"News for Raw{n}"
            message["Message-ID"] = make_msgid(domain="shop.example")
            message["List-Unsubscribe"] = f"<https://crm.example.com/unsubscribe/raw{n}>"
            message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
            message["Auto-Submitted"] = "auto-generated"
            message.set_content(f"Hello Raw{n}, our news.\n")
            smtp.send_message(message)
    return count / (time.perf_counter() - started)


def seed_contacts(engine: Engine, count: int) -> None:
    from crm_core.models import Contact, Customer

    now = dt.datetime.now(dt.UTC)
    with engine.begin() as conn:
        conn.execute(
            insert(Customer),
            [{"id": 1, "kind": "company", "name": "Seed Co", "name_key": "seed co",
              "lifecycle_stage": "lead", "tags": [], "created_at": now, "updated_at": now}],
        )  # fmt: skip
        for start in range(0, count, SEED_CHUNK):
            rows = [
                {"customer_id": 1, "is_primary": i == 0, "email": f"r{i}@example.com",
                 "email_normalized": f"r{i}@example.com", "first_name": f"R{i}",
                 "attributes": {}, "tags": [], "created_at": now, "updated_at": now}
                for i in range(start, min(count, start + SEED_CHUNK))
            ]  # fmt: skip
            conn.execute(insert(Contact), rows)
        conn.execute(text("SELECT setval('customers_id_seq', 1)"))
    with engine.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT").execute(text("ANALYZE"))


def tree_memory(pid: int) -> tuple[int, int]:
    """(RSS, PSS) bytes of ``pid`` and every descendant, from /proc.

    The RSS sum counts the pages a prefork pool shares with its parent once per
    process; PSS divides each shared page among its sharers, so its sum is the
    memory the worker really holds.
    """
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    fields = stat.read().rsplit(")", 1)[1].split()
                parents[int(entry)] = int(fields[1])
            except OSError:
                continue
    family, frontier = {pid}, [pid]
    while frontier:
        parent = frontier.pop()
        children = [p for p, pp in parents.items() if pp == parent and p not in family]
        family.update(children)
        frontier.extend(children)
    rss = pss = 0
    for member in family:
        try:
            with open(f"/proc/{member}/smaps_rollup") as rollup:
                for line in rollup:
                    if line.startswith("Rss:"):
                        rss += int(line.split()[1]) * 1024
                    elif line.startswith("Pss:"):
                        pss += int(line.split()[1]) * 1024
        except OSError:
            continue
    return rss, pss


class PeakMemory(threading.Thread):
    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid, self.rss, self.pss, self.stopped = pid, 0, 0, threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(0.2):
            rss, pss = tree_memory(self.pid)
            self.rss, self.pss = max(self.rss, rss), max(self.pss, pss)


def measure(args: argparse.Namespace) -> dict[str, float]:
    from crm_core import migrate
    from crm_core.campaigns import scheduling, services
    from crm_core.db import make_engine, make_session_factory, utcnow

    with scratch_database() as url, private_redis() as redis_url, smtp_sink() as (port, counter):
        raw = raw_rate(port, args.raw_messages)
        print(f"raw smtplib: {raw:,.0f} messages/s over {args.raw_messages:,}", flush=True)
        migrate.upgrade(url)
        engine = make_engine(url)
        seed_contacts(engine, args.recipients)
        sessions = make_session_factory(engine)
        with sessions.begin() as session:
            campaign = services.create_campaign(
                session,
                name="Bench",
                code="bench",
                subject="News for {{ contact.first_name }}",
                text="Hello {{ contact.first_name }}, our news.\nLeave: {{ unsubscribe_url }}\n",
            )
            services.send_now(session, campaign_id=campaign.id)
            campaign_id = campaign.id
        started = time.perf_counter()
        with sessions.begin() as session:
            [claimed] = scheduling.claim_due_campaigns(session, now=utcnow())
            materialized = scheduling.materialize_recipients(
                session, campaign=services.get_campaign(session, campaign_id=claimed), now=utcnow()
            )
        materialize_s = time.perf_counter() - started
        print(f"materialized {materialized:,} sends in {materialize_s:.2f} s", flush=True)
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("CRM_")},
            "CRM_DATABASE_URL": url,
            "CRM_BROKER_URL": redis_url,
            "CRM_SECRET_KEY": "bench-secret",
            "CRM_PUBLIC_URL": "https://crm.example.com",
            "CRM_MAIL_URL": f"smtp://127.0.0.1:{port}",
            "CRM_MAIL_FROM": "Shop <news@shop.example>",
            "CRM_LOG_LEVEL": "WARNING",
            "PYTHONPATH": str(ROOT),
        }
        command = [
            sys.executable, "-m", "celery", "--app", "workers.app", "worker",
            "--queues", "campaigns", "--concurrency", str(args.concurrency), "--pool", args.pool,
            "--loglevel", "WARNING", "--without-gossip", "--without-mingle",
            "--without-heartbeat",
        ]  # fmt: skip
        worker = subprocess.Popen(command, cwd=ROOT, env=env)
        peak = PeakMemory(worker.pid)
        peak.start()
        publisher = Celery(broker=redis_url)
        try:
            time.sleep(3)  # the worker connects; its start-up is not the send rate
            before = counter.value
            sending_started = time.perf_counter()
            import celeryconfig

            for _ in range(celeryconfig.crm_campaign_parallel_batches):
                publisher.send_task(
                    "crm.campaigns.send_batch", args=[campaign_id], queue="campaigns"
                )

            def sent() -> bool:
                with engine.connect() as conn:
                    status = conn.scalar(
                        text("SELECT status FROM marketing_campaigns WHERE id = :id"),
                        {"id": campaign_id},
                    )
                return status == "sent"

            wait_for(sent, "the campaign to be sent", timeout=7200)
            elapsed = time.perf_counter() - sending_started
            delivered = counter.value - before
        finally:
            peak.stopped.set()
            worker.terminate()
            worker.wait()
        with sessions() as session:
            stats = services.get_campaign_view(session, campaign_id=campaign_id).stats
        engine.dispose()
    return {
        "raw": raw,
        "rate": delivered / elapsed,
        "delivered": delivered,
        "elapsed": elapsed,
        "materialize_s": materialize_s,
        "peak_rss_mb": peak.rss / 2**20,
        "peak_pss_mb": peak.pss / 2**20,
        "sent": stats["sent"],
        "unknown": stats["unknown"],
        "failed": stats["failed"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--recipients", type=int, default=100_000)
    parser.add_argument(
        "--concurrency", type=int, help="threads or pool processes (default: 4 threads, 2 prefork)"
    )
    parser.add_argument("--raw-messages", type=int, default=20_000)
    parser.add_argument(
        "--pool",
        choices=["prefork", "threads"],
        default="threads",
        help="the worker's pool (threads: the Procfile's sender)",
    )
    args = parser.parse_args()
    if args.concurrency is None:
        args.concurrency = 4 if args.pool == "threads" else 2
    r = measure(args)
    print()
    print(f"recipients            {args.recipients:,}")
    print(f"materialization       {r['materialize_s']:.2f} s")
    print(f"raw smtplib           {r['raw']:,.0f} messages/s")
    print(f"platform              {r['rate']:,.0f} messages/s "
          f"({r['delivered']:,} in {r['elapsed']:.1f} s)")  # fmt: skip
    print(f"platform / raw        {r['rate'] / r['raw']:.0%}")
    print(f"worker peak RSS sum   {r['peak_rss_mb']:.0f} MB (shared pages counted per process)")
    print(f"worker peak PSS sum   {r['peak_pss_mb']:.0f} MB")
    print(f"sent/unknown/failed   {r['sent']:,}/{r['unknown']:,}/{r['failed']:,}")


if __name__ == "__main__":
    main()
