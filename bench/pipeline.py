"""Benchmark of lead processing end to end, beside a Celery no-op (not a test).

    .venv/bin/python -m bench.pipeline [--events 2000] [--existing 10000,1000000]
                                       [--latency-samples 200] [--concurrency 2]
                                       [--per-message 100]

For each size of the existing contact base (seeded with bulk inserts) it starts
a scratch PostgreSQL database, a private redis-server and ONE worker
(prefork, ``--concurrency``), then:

1. drains ``--events`` no-op tasks published at once (the baseline);
2. drains ``--events`` stored lead events published at once, as the web
   layer publishes a burst: ``--per-message`` event ids per
   ``crm.ingest.process_events`` message, whose leads the worker captures as
   one batch (``--per-message 1``: one message per event, each claimed and
   processed on its own). The pipeline: claim, normalize,
   match or create contact and customer, Activity, complete;
3. posts ``--latency-samples`` signed leads through gunicorn, one every
   ``--latency-interval`` seconds (default 0.1), and times each from the POST
   to the contact being visible in the read API (polled every 20 ms);
4. counts the database round trips (statements and commits) per event in
   process, the same way (one by one, or in batches of ``--per-message``).

It prints events/s for both, the ratio, p50/p99 latency and round trips per
event, and finally the per-event cost at the largest base over the smallest.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import redis
import requests
from celery import Celery
from sqlalchemy import Engine, event, func, insert, select, text

from bench.intake import ROOT, free_port, private_redis, scratch_database, wait_for

SEED_CHUNK = 20_000


def seed_contacts(engine: Engine, count: int) -> None:
    """``count`` contacts over count/10 company customers, with Core bulk inserts."""
    from crm_core.models import Contact, Customer

    customers = max(1, count // 10)
    now = dt.datetime.now(dt.UTC)
    with engine.begin() as conn:
        for start in range(0, customers, SEED_CHUNK):
            rows = [
                {"id": i + 1, "kind": "company", "name": f"Seed Co {i}", "name_key": f"seed co {i}",
                 "domain": f"seed{i}.example", "lifecycle_stage": "lead", "tags": [],
                 "created_at": now, "updated_at": now}
                for i in range(start, min(customers, start + SEED_CHUNK))
            ]  # fmt: skip
            conn.execute(insert(Customer), rows)
        for start in range(0, count, SEED_CHUNK):
            rows = [
                {"customer_id": i % customers + 1, "is_primary": i < customers,
                 "email": f"seed{i}@seed{i % customers}.example",
                 "email_normalized": f"seed{i}@seed{i % customers}.example",
                 "first_name": "Seed", "last_name": str(i), "attributes": {}, "tags": [],
                 "created_at": now, "updated_at": now}
                for i in range(start, min(count, start + SEED_CHUNK))
            ]  # fmt: skip
            conn.execute(insert(Contact), rows)
        conn.execute(text("SELECT setval('customers_id_seq', (SELECT max(id) FROM customers))"))
    with engine.connect() as conn:
        # A base that has been live for a while has been vacuumed; without this, autovacuum
        # would work through a million freshly inserted rows during the measurement.
        conn.execution_options(isolation_level="AUTOCOMMIT").execute(text("VACUUM ANALYZE"))


def lead_body(n: int, run: str) -> bytes:
    company = n % 200
    return json.dumps(
        {
            "email": f"lead{n}.{run}@company{company}.example",
            "full_name": f"Lead {n} Person",
            "company": f"Company {company}",
            "phone": f"+1 415 555 {n % 10000:04d}",
            "utm_campaign": "bench",
        }
    ).encode()


@contextmanager
def worker(env: dict[str, str], concurrency: int) -> Iterator[subprocess.Popen[bytes]]:
    command = [
        sys.executable, "-m", "celery", "--app", "workers.app", "worker", "--include", "bench.noop",
        "--queues", "ingest", "--concurrency", str(concurrency), "--loglevel", "WARNING",
        "--without-gossip", "--without-mingle", "--without-heartbeat",
    ]  # fmt: skip
    process = subprocess.Popen(command, cwd=ROOT, env=env)
    try:
        yield process
    finally:
        process.terminate()
        process.wait()


def queue_empty(client: redis.Redis, prefix: str) -> bool:
    return client.llen(f"{prefix}ingest") == 0 and client.hlen(f"{prefix}unacked") == 0


def drain_noops(publisher: Celery, count: int, client: redis.Redis, prefix: str) -> float:
    """Seconds to drain ``count`` no-op tasks published at once."""
    started = time.perf_counter()
    for n in range(count):
        publisher.send_task("bench.noop", args=[n], queue="ingest")
    wait_for(lambda: queue_empty(client, prefix), "the no-op queue to drain", timeout=600)
    return time.perf_counter() - started


def store_leads(engine: Engine, source_id: int, count: int, run: str) -> list[int]:
    from crm_core.db import make_session_factory
    from crm_core.ingestion.inbox import store_event

    ids = []
    with make_session_factory(engine).begin() as session:
        for n in range(count):
            stored = store_event(
                session,
                source_id=source_id,
                kind="leads",
                webhook_id=f"{run}-{n}",
                content_type="application/json",
                body=lead_body(n, run),
            )
            ids.append(stored.id)
    return ids


def drain_leads(publisher: Celery, engine: Engine, ids: list[int], per_message: int) -> float:
    """Seconds to process stored lead events published at once.

    They are published as the web layer publishes a burst: ``per_message`` ids
    per ``crm.ingest.process_events`` message (1: one message each).
    """
    from crm_core.ingestion.models import EventStatus, InboxEvent

    def done() -> bool:
        with engine.connect() as conn:
            waiting = select(func.count()).where(
                InboxEvent.id.in_(ids), InboxEvent.status != EventStatus.PROCESSED
            )
            return conn.scalar(waiting) == 0

    started = time.perf_counter()
    if per_message == 1:
        for event_id in ids:
            publisher.send_task("crm.ingest.process_events", args=[[event_id]], queue="ingest")
    else:
        for start in range(0, len(ids), per_message):
            chunk = ids[start : start + per_message]
            publisher.send_task("crm.ingest.process_events", args=[chunk], queue="ingest")
    wait_for(done, "the lead events to be processed", timeout=1800)
    return time.perf_counter() - started


def round_trips_per_event(
    engine: Engine, source_id: int, samples: int = 100, per_message: int = 1
) -> float:
    """Statements and commits one lead event costs, processed in this process.

    One by one (``per_message`` 1: claim, then process, each committed) or as
    the worker handles a message of ``per_message`` events (one claim, one batch).
    """
    from crm_core.config import get_settings
    from crm_core.db import make_session_factory
    from crm_core.ingestion.batching import run_batch
    from crm_core.ingestion.policy import IngestPolicy
    from crm_core.ingestion.processing import claim_events
    from crm_core.ingestion.single_event import run_event

    ids = store_leads(engine, source_id, samples, f"rt{uuid.uuid4().hex[:6]}")
    counted = {"n": 0}

    def count(*_args: object) -> None:
        counted["n"] += 1

    event.listen(engine, "before_cursor_execute", count)
    event.listen(engine, "commit", count)
    sessions = make_session_factory(engine)
    try:
        if per_message > 1:
            for start in range(0, len(ids), per_message):
                chunk = ids[start : start + per_message]
                with sessions.begin() as session:
                    claim_events(session, event_ids=chunk)
                with sessions.begin() as session:
                    run_batch(
                        session,
                        kind="leads",
                        event_ids=chunk,
                        policy=IngestPolicy.from_settings(get_settings()),
                    )
        for event_id in ids if per_message == 1 else []:
            with sessions.begin() as session:
                claim_events(session, event_ids=[event_id])
            with sessions.begin() as session:
                run_event(
                    session, event_id=event_id, policy=IngestPolicy.from_settings(get_settings())
                )
    finally:
        event.remove(engine, "before_cursor_execute", count)
        event.remove(engine, "commit", count)
    return counted["n"] / samples


def latencies(
    env: dict[str, str], secret: str, api_key: str, samples: int, args_interval: float
) -> list[float]:
    """Seconds from each POST until its contact is visible in the read API."""
    from tests.signed import signed_headers

    port = free_port()
    command = [
        sys.executable, "-m", "gunicorn", "--config", "python:webhooks.gunicorn_conf",
        "--worker-class", "gthread", "--workers", "2", "--threads", "4", "--reuse-port",
        "--bind", f"127.0.0.1:{port}", "--log-level", "warning",
        "webhooks.app:create_app()",
    ]  # fmt: skip
    web = subprocess.Popen(command, cwd=ROOT, env=env)
    base = f"http://127.0.0.1:{port}"
    wait_for(lambda: requests.get(f"{base}/healthz", timeout=1).ok, "gunicorn")
    run = uuid.uuid4().hex[:6]
    results: list[float] = []
    lock = threading.Lock()

    def one(n: int) -> None:
        body = lead_body(n, run)
        email = json.loads(body)["email"]
        started = time.perf_counter()
        headers = signed_headers(secret, body, msg_id=f"lat-{run}-{n}")
        assert (
            requests.post(
                f"{base}/webhooks/bench/leads", data=body, headers=headers, timeout=30
            ).status_code
            == 202
        )
        auth = {"Authorization": f"Bearer {api_key}"}
        while True:
            found = requests.get(
                f"{base}/api/contacts", params={"email": email}, headers=auth, timeout=30
            )
            if found.json()["items"]:
                break
            time.sleep(0.02)
        with lock:
            results.append(time.perf_counter() - started)

    try:
        with ThreadPoolExecutor(max_workers=32) as pool:
            for n in range(samples):
                pool.submit(one, n)
                time.sleep(args_interval)
    finally:
        web.terminate()
        web.wait()
    return results


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def measure(existing: int, args: argparse.Namespace) -> dict[str, float]:
    from crm_core import migrate
    from crm_core.db import make_engine, make_session_factory
    from crm_core.encryption.keyring import Keyring
    from crm_core.ingestion.services import create_source
    from crm_core.people.api_keys import create_api_key
    from crm_core.people.permissions import Actor

    key = Keyring.generate_key()
    with scratch_database() as url, private_redis() as broker:
        migrate.upgrade(url)
        engine = make_engine(url, keyring=Keyring([key]))
        seeded = time.perf_counter()
        seed_contacts(engine, existing)
        seed_seconds = time.perf_counter() - seeded
        with make_session_factory(engine).begin() as session:
            source, secret = create_source(session, name="bench")
            _, api_key = create_api_key(session, actor=Actor.operator("bench"), name="bench")
            source_id = source.id
        prefix = f"bench-{uuid.uuid4().hex[:6]}:"
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("CRM_")},
            "CRM_DATABASE_URL": url,
            "CRM_BROKER_URL": broker,
            "CRM_BROKER_KEY_PREFIX": prefix,
            "CRM_RATELIMIT_URL": "memory://",
            "CRM_SECRET_KEY": "bench",
            "CRM_ENCRYPTION_KEYS": key,
            "PYTHONPATH": str(ROOT),
        }
        publisher = Celery("bench", broker=broker)
        publisher.conf.broker_transport_options = {"global_keyprefix": prefix}
        client = redis.Redis.from_url(broker)
        ids = store_leads(engine, source_id, args.events, uuid.uuid4().hex[:6])
        with worker(env, args.concurrency):
            wait_for(lambda: client.exists(f"{prefix}_kombu.binding.ingest"), "the worker", 60)
            time.sleep(2)
            noop_seconds = drain_noops(publisher, args.events, client, prefix)
            lead_seconds = drain_leads(publisher, engine, ids, args.per_message)
            lat = latencies(env, secret, api_key, args.latency_samples, args.latency_interval)
        trips = round_trips_per_event(engine, source_id, per_message=args.per_message)
        engine.dispose()
    return {
        "existing": existing,
        "seed_s": seed_seconds,
        "noop_per_s": args.events / noop_seconds,
        "lead_per_s": args.events / lead_seconds,
        "p50_ms": statistics.median(lat) * 1000,
        "p99_ms": percentile(lat, 0.99) * 1000,
        "round_trips": trips,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--existing", default="10000,1000000")
    parser.add_argument("--latency-samples", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument(
        "--per-message",
        type=int,
        default=100,
        help="lead events per published message, as the web layer publishes a burst "
        "(1: one message per event)",
    )
    parser.add_argument(
        "--latency-interval", type=float, default=0.1, help="seconds between latency samples"
    )
    args = parser.parse_args()
    rows = [measure(int(size), args) for size in args.existing.split(",")]
    header = ("existing", "seed s", "no-op/s", "leads/s", "ratio", "p50 ms", "p99 ms", "trips")
    print("\n" + " ".join(f"{h:>10}" for h in header))
    for r in rows:
        cells = (
            f"{r['existing']:,}",
            f"{r['seed_s']:.1f}",
            f"{r['noop_per_s']:.0f}",
            f"{r['lead_per_s']:.0f}",
            f"{r['lead_per_s'] / r['noop_per_s']:.0%}",
            f"{r['p50_ms']:.0f}",
            f"{r['p99_ms']:.0f}",
            f"{r['round_trips']:.1f}",
        )
        print(" ".join(f"{c:>10}" for c in cells))
    if len(rows) > 1:
        first, last = rows[0], rows[-1]
        cost = first["lead_per_s"] / last["lead_per_s"]
        sizes = f"{last['existing']:,} contacts over {first['existing']:,}"
        print(f"\nper-event cost with {sizes}: {cost:.2f}x")


if __name__ == "__main__":
    main()
