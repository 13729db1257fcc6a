"""Benchmark of the webhook intake against two baselines (not a test).

    .venv/bin/python -m bench.intake [--duration 20] [--senders 32] [--workers 2] [--threads 4]
                                     [--no-reuse-port] [--client-kind wrk|python]
                                     [--targets bare insert intake shopify] [--rounds 1]

Starts a private redis-server and a scratch PostgreSQL database, then serves
four targets in turn under the same gunicorn settings: ``bare`` (parse JSON,
202), ``insert`` (plus one committed INSERT), ``intake`` (the real app:
signature, source, idempotent inbox row, rate limit on Redis, publish to
Redis) and ``shopify`` (the real app too, taking Shopify's requests at
``/webhooks/<source>``: its HMAC, headers read for the topic and delivery id).
For each, ``--senders`` concurrent keep-alive connections post signed requests
for ``--duration`` seconds; then it prints accepted/s, p50/p99 latency and the
non-2xx count, and ``shopify`` beside ``intake``.

The client is ``wrk`` (Debian package ``wrk``) when it is installed: Python
signs a distinct request per post just before each target's run and wrk, in C,
replays them (``bench/intake_wrk.lua``), so the load generator takes little of
the CPUs the server shares. ``--client python`` uses Python sender threads in
a separate process instead (the client of earlier figures).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import http.client
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
POSTGRES_URL = os.environ.get(
    "CRM_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
TARGETS = {
    "bare": "bench.baselines:bare_app()",
    "insert": "bench.baselines:insert_app()",
    "intake": "webhooks.app:create_app()",
    "shopify": "webhooks.app:create_app()",
}
SHOPIFY_SECRET = "shpss_bench0123456789abcdef0123456789ab"


def signed_request(
    target: str, secret: str, msg_id: str, ts: int, n: int
) -> tuple[str, dict[str, str], bytes]:
    """Path, headers and body of one distinct request as ``target``'s sender makes it."""
    if target == "shopify":
        body = json.dumps(
            {
                "id": n,
                "email": f"customer{n}.{msg_id[-8:]}@example.com",
                "first_name": "Ada",
                "last_name": "Lovelace",
                "email_marketing_consent": {"state": "subscribed", "opt_in_level": "single_opt_in"},
            }
        ).encode()
        digest = hmac.new(SHOPIFY_SECRET.encode(), body, hashlib.sha256).digest()
        headers = {
            "Content-Type": "application/json",
            "X-Shopify-Topic": "customers/create",
            "X-Shopify-Hmac-Sha256": base64.b64encode(digest).decode(),
            "X-Shopify-Webhook-Id": msg_id,
            "X-Shopify-Shop-Domain": "bench.myshopify.com",
        }
        return "/webhooks/shopbench", headers, body
    from crm_core.base.signing import sign

    body = json.dumps({"email": f"lead{n}.{msg_id[-8:]}@example.com", "first_name": "Ada"}).encode()
    headers = {
        "Content-Type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": str(ts),
        "webhook-signature": sign(secret, msg_id=msg_id, timestamp=ts, body=body),
    }
    return "/webhooks/bench/leads", headers, body


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(check, what: str, timeout: float = 30.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"{what} did not come up")


@contextmanager
def private_redis():  # type: ignore[no-untyped-def]
    port = free_port()
    binary = shutil.which("redis-server") or sys.exit("redis-server is needed")
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )
    import redis

    wait_for(lambda: redis.Redis(port=port).ping(), "redis-server")
    try:
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        process.wait()


@contextmanager
def scratch_database():  # type: ignore[no-untyped-def]
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    name = f"crm_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@contextmanager
def gunicorn(target: str, env: dict[str, str], args: argparse.Namespace):  # type: ignore[no-untyped-def]
    port = free_port()
    command = [
        sys.executable, "-m", "gunicorn",
        "--config", "python:webhooks.gunicorn_conf",
        "--worker-class", "gthread",
        "--workers", str(args.workers),
        "--threads", str(args.threads),
        "--keep-alive", "30",
        "--backlog", "2048",
        *(["--reuse-port"] if args.reuse_port else []),
        "--bind", f"127.0.0.1:{port}",
        "--log-level", "warning",
        TARGETS[target],
    ]  # fmt: skip
    process = subprocess.Popen(command, cwd=ROOT, env=env)

    def up() -> bool:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
        conn.request("GET", "/nothing")
        return conn.getresponse().status > 0

    try:
        # Two minutes: on a shared machine under load, importing the app alone can take 30 s.
        wait_for(up, f"gunicorn ({target})", timeout=120)
        yield port
    finally:
        process.terminate()
        process.wait()


def send(port: int, secret: str, senders: int, duration: float, target: str) -> dict[str, float]:
    """The sender process's work: ``senders`` threads posting signed requests until time is up."""
    latencies: list[list[float]] = [[] for _ in range(senders)]
    failures = [0] * senders
    run = uuid.uuid4().hex[:8]
    start = time.monotonic()
    deadline = start + duration

    def sender(index: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        n = 0
        while time.monotonic() < deadline:
            n += 1
            msg_id = f"bench-{run}-{index}-{n}"
            path, headers, raw = signed_request(target, secret, msg_id, int(time.time()), n)
            began = time.perf_counter()
            conn.request("POST", path, body=raw, headers=headers)
            response = conn.getresponse()
            response.read()
            latencies[index].append(time.perf_counter() - began)
            if not 200 <= response.status < 300:
                failures[index] += 1

    threads = [threading.Thread(target=sender, args=(i,)) for i in range(senders)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - start
    every = sorted(x for per in latencies for x in per)
    quantiles = statistics.quantiles(every, n=100)
    return {
        "requests": len(every),
        "seconds": elapsed,
        "accepted_per_s": (len(every) - sum(failures)) / elapsed,
        "p50_ms": quantiles[49] * 1000,
        "p99_ms": quantiles[98] * 1000,
        "non_2xx": sum(failures),
    }


# Requests signed per second of the run for wrk: above any rate this machine reaches.
WRK_REQUESTS_PER_SECOND = 12000


def run_wrk(port: int, secret: str, args: argparse.Namespace, target: str) -> dict[str, float]:
    """wrk with ``--senders`` connections, replaying freshly signed distinct requests."""
    run = uuid.uuid4().hex[:8]
    count = int(WRK_REQUESTS_PER_SECOND * args.duration)
    ts = int(time.time())
    lines = []
    for n in range(count):
        path, headers, body = signed_request(target, secret, f"bench-{run}-{n}", ts, n)
        fields = [path, *(part for item in headers.items() for part in item), body.decode()]
        lines.append("\t".join(fields) + "\n")
    threads = 2
    with tempfile.NamedTemporaryFile("w", suffix=".tsv", delete=False) as requests_file:
        requests_file.writelines(lines)
    try:
        command = [
            "wrk", "--threads", str(threads), "--connections", str(args.senders),
            "--duration", f"{args.duration:g}s", "--timeout", "30s",
            "--script", str(ROOT / "bench" / "intake_wrk.lua"),
            f"http://127.0.0.1:{port}", "--", requests_file.name, str(threads),
        ]  # fmt: skip
        output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    finally:
        os.unlink(requests_file.name)
    result = json.loads(output.strip().splitlines()[-1])
    if result["wrapped"]:
        print(f"warning: wrk ran out of signed requests {result['wrapped']} times", flush=True)
    result["accepted_per_s"] = (result["requests"] - result["non_2xx"]) / result["seconds"]
    result["non_2xx"] += result.pop("socket_errors")
    return result


def run_sender_process(
    port: int, secret: str, args: argparse.Namespace, target: str
) -> dict[str, float]:
    """Senders run in their own process, so the client's GIL is not the server's."""
    command = [
        sys.executable, "-m", "bench.intake", "--client", "--target", target,
        "--port", str(port), "--secret", secret,
        "--senders", str(args.senders), "--duration", str(args.duration),
    ]  # fmt: skip
    output = subprocess.run(command, cwd=ROOT, check=True, capture_output=True, text=True).stdout
    return json.loads(output.strip().splitlines()[-1])


def main(args: argparse.Namespace) -> None:
    from crm_core import migrate
    from crm_core.db import make_engine, make_session_factory
    from crm_core.encryption.keyring import Keyring
    from crm_core.ingestion.services import create_source

    results = {}
    key = Keyring.generate_key()
    with private_redis() as redis_url, scratch_database() as database_url:
        migrate.upgrade(database_url)
        engine = make_engine(database_url, keyring=Keyring([key]))
        with make_session_factory(engine).begin() as session:
            _, secret = create_source(session, name="bench")
            create_source(session, name="shopbench", provider="shopify", secret=SHOPIFY_SECRET)
        engine.dispose()
        env = {k: v for k, v in os.environ.items() if not k.startswith("CRM_")}
        env.update(
            CRM_DATABASE_URL=database_url,
            CRM_BROKER_URL=redis_url,
            CRM_ENCRYPTION_KEYS=key,
            CRM_RATE_LIMIT_PER_MINUTE="100000000",
            CRM_DB_POOL_SIZE=str(args.threads),
            CRM_LOG_LEVEL="WARNING",
            PYTHONPATH=str(ROOT),
        )
        env.update(dict(item.split("=", 1) for item in args.set))
        # Several rounds take the targets in turn, so a slow spell of this shared
        # machine falls on each of them; the ratios compare the rounds' sums.
        rounds: dict[str, list[dict[str, float]]] = {}
        for _ in range(args.rounds):
            for target in args.targets:
                with gunicorn(target, env, args) as port:
                    if args.client_kind == "wrk":
                        result = run_wrk(port, secret, args, target)
                    else:
                        result = run_sender_process(port, secret, args, target)
                rounds.setdefault(target, []).append(result)
                print(_row(target, result), flush=True)
        results = {target: _total(runs) for target, runs in rounds.items()}
    if "insert" in results and "intake" in results:
        ratio = results["intake"]["accepted_per_s"] / results["insert"]["accepted_per_s"]
        print(f"intake / insert baseline: {ratio:.0%} (target ≥ 70%)")
    if "intake" in results and "shopify" in results:
        ratio = results["shopify"]["accepted_per_s"] / results["intake"]["accepted_per_s"]
        print(f"shopify / intake (standard): {ratio:.0%} (target ≥ 90%)")
    print(
        f"machine: {platform.platform()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"
    )
    print(
        f"gunicorn gthread --workers {args.workers} --threads {args.threads}"
        f"{' --reuse-port' if args.reuse_port else ''}; "
        f"{args.senders} connections ({args.client_kind}) for {args.duration:g} s each"
    )


def _total(runs: list[dict[str, float]]) -> dict[str, float]:
    """The rounds of one target as one: requests and time added up."""
    requests = sum(r["requests"] for r in runs)
    failed = sum(r["non_2xx"] for r in runs)
    return {"accepted_per_s": (requests - failed) / sum(r["seconds"] for r in runs)}


def _row(name: str, r: dict[str, float]) -> str:
    tail = f"  (p90 {r['p90_ms']:.1f}, max {r['max_ms']:.0f} ms)" if "p90_ms" in r else ""
    return (
        f"{name:7} {r['requests']:7.0f} requests  {r['accepted_per_s']:8.1f} accepted/s  "
        f"p50 {r['p50_ms']:6.1f} ms  p99 {r['p99_ms']:6.1f} ms  non-2xx {r['non_2xx']:.0f}{tail}"
    )


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=20.0)
    parser.add_argument("--senders", type=int, default=32)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=4)  # the Procfile's WEB_THREADS
    parser.add_argument(  # the Procfile's setting
        "--reuse-port",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="one listening socket per gunicorn worker (default: on)",
    )
    parser.add_argument("--targets", nargs="+", default=list(TARGETS), choices=list(TARGETS))
    parser.add_argument("--rounds", type=int, default=1, help="Take the targets in turn N times.")
    parser.add_argument(
        "--set", action="append", default=[], metavar="CRM_X=V", help="Override a setting."
    )
    parser.add_argument(
        "--client-kind",
        choices=["wrk", "python"],
        default="wrk" if shutil.which("wrk") else "python",
        help="the load generator (default: wrk when installed)",
    )
    parser.add_argument("--client", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--secret", help=argparse.SUPPRESS)
    parser.add_argument("--target", default="intake", help=argparse.SUPPRESS)
    return parser.parse_args()


if __name__ == "__main__":
    arguments = parse_args()
    if arguments.client:
        print(
            json.dumps(
                send(
                    arguments.port,
                    arguments.secret,
                    arguments.senders,
                    arguments.duration,
                    arguments.target,
                )
            )
        )
    else:
        main(arguments)
