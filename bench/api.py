"""Benchmark of the read API's search, case list and timeline beside a baseline (not a test).

    .venv/bin/python -m bench.api [--contacts 1000000] [--cases 100000] [--requests 400]
                                  [--connections 4] [--rounds 3] [--workers 2] [--threads 4]
                                  [--database-url URL]

Makes a scratch PostgreSQL database at revision 0015, fills it in the server with
``INSERT … SELECT FROM generate_series`` (customers, ``--contacts`` contacts with names,
addresses and E.164 numbers, ``--cases`` support cases with subjects, assignees and statuses,
and 100 Activities for each of 2,000 customers), then upgrades it to head, so migrations 0020
and 0021 build their search and keyset indexes and the list of words over the rows (the time
is printed). The real app then
runs under gunicorn as the Procfile starts it, and ``--connections`` keep-alive clients send,
in turn for ``--rounds`` rounds, ``--requests`` requests to each route:

- ``baseline``: ``GET /api/contacts/<id>`` (one row by primary key, the same key check);
- ``search-email``, ``search-name``, ``search-typo``, ``search-phone``: ``GET /api/search?q=``
  with an existing address, an existing full name, that name with a letter dropped, and a
  number written nationally with punctuation;
- ``cases``: ``GET /api/cases?assignee=…&status=open`` (a page of 50);
- ``timeline``: ``GET /api/customers/<id>/timeline`` (a page of 50, of 100).

It prints p50 and p95 per route and each p95 over the baseline's (the target: within 3 times).
Seeding a million contacts takes minutes on a busy machine: ``--database-url`` measures a
database seeded before (``seed`` at revision 0015, kept) after upgrading it to head.
"""

from __future__ import annotations

import argparse
import http.client
import os
import platform
import random
import statistics
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from bench.intake import POSTGRES_URL, gunicorn, scratch_database

FIRST = [
    "Ada",
    "Alan",
    "Alice",
    "Amir",
    "Ana",
    "Anton",
    "Aria",
    "Ben",
    "Bianca",
    "Carla",
    "Chen",
    "Chloe",
    "Dana",
    "David",
    "Elena",
    "Emil",
    "Emma",
    "Eva",
    "Farah",
    "Felix",
    "Fiona",
    "Grace",
    "Hana",
    "Hugo",
    "Ines",
    "Ivan",
    "Jade",
    "James",
    "Jonas",
    "Julia",
    "Kai",
    "Kara",
    "Lars",
    "Lea",
    "Leo",
    "Lina",
    "Luca",
    "Maja",
    "Marco",
    "Maria",
    "Mateo",
    "Mia",
    "Nadia",
    "Nico",
    "Nina",
    "Noah",
    "Nora",
    "Omar",
    "Oskar",
    "Paula",
    "Petra",
    "Rafael",
    "Rosa",
    "Ruth",
    "Sara",
    "Simon",
    "Sofia",
    "Tara",
    "Theo",
    "Tom",
    "Uma",
    "Vera",
    "Viktor",
    "Yara",
    "Yusuf",
    "Zoe",
]
LAST = [
    "Abbott",
    "Acosta",
    "Adler",
    "Ahmed",
    "Alvarez",
    "Andersen",
    "Arnold",
    "Bauer",
    "Becker",
    "Berg",
    "Bishop",
    "Blanco",
    "Brandt",
    "Brooks",
    "Byrne",
    "Castillo",
    "Chandra",
    "Cohen",
    "Costa",
    "Dahl",
    "Delgado",
    "Dietrich",
    "Dubois",
    "Duran",
    "Eriksen",
    "Farouk",
    "Fischer",
    "Fleming",
    "Fontaine",
    "Garcia",
    "Gentile",
    "Goldberg",
    "Gonzalez",
    "Gruber",
    "Haas",
    "Hansen",
    "Hartmann",
    "Herrera",
    "Hoffmann",
    "Hopper",
    "Horvat",
    "Ibrahim",
    "Ivanova",
    "Jansen",
    "Jensen",
    "Kaiser",
    "Kappel",
    "Keller",
    "Khan",
    "Klein",
    "Koch",
    "Kowalski",
    "Kraus",
    "Lange",
    "Larsen",
    "Lehmann",
    "Lorenz",
    "Lovelace",
    "Maier",
    "Marin",
    "Martens",
    "Medina",
    "Meyer",
    "Moreau",
    "Morales",
    "Nagy",
    "Navarro",
    "Nielsen",
    "Novak",
    "Okafor",
    "Olsen",
    "Ortega",
    "Pavlov",
    "Peters",
    "Petrov",
    "Quinn",
    "Ramos",
    "Reyes",
    "Richter",
    "Romano",
    "Rossi",
    "Sala",
    "Santos",
    "Schmidt",
    "Schneider",
    "Schulz",
    "Silva",
    "Sorensen",
    "Stein",
    "Suarez",
    "Tanaka",
    "Torres",
    "Vargas",
    "Vogel",
    "Wagner",
    "Walter",
    "Weber",
    "Wolf",
    "Yilmaz",
    "Zimmer",
]
WORDS = [
    "invoice",
    "printer",
    "login",
    "password",
    "refund",
    "shipment",
    "delayed",
    "broken",
    "missing",
    "wrong",
    "charge",
    "account",
    "locked",
    "export",
    "import",
    "sync",
    "error",
    "timeout",
    "slow",
    "report",
    "dashboard",
    "email",
    "bounce",
    "upgrade",
    "plan",
    "cancel",
    "renewal",
    "contract",
    "address",
    "label",
    "damaged",
    "order",
    "tracking",
    "portal",
    "access",
    "api",
    "webhook",
]


def _array(values: list[str]) -> str:
    return "ARRAY[" + ", ".join(f"'{v}'" for v in values) + "]"


def seed(database_url: str, contacts: int, cases: int) -> None:
    """Rows made in the server; 5 contacts per customer, activities for 2,000 customers."""
    from sqlalchemy import create_engine, text

    customers = max(contacts // 5, 1)
    first, last, words = _array(FIRST), _array(LAST), _array(WORDS)
    nf, nl, nw = len(FIRST), len(LAST), len(WORDS)
    statements = [
        f"""INSERT INTO customers (id, kind, name, name_key, lifecycle_stage, attributes, tags,
            created_at, updated_at)
        SELECT g, 'company', n, lower(n), 'customer', '{{}}', '[]', now(),
            now() - g * interval '1 second'
        FROM generate_series(1, {customers}) g,
            LATERAL (SELECT ({last})[1 + g % {nl}] || ' '
                || (ARRAY['Industries', 'Labs', 'Group', 'Systems', 'Logistics'])[1 + g % 5]
                || ' ' || g AS n) named""",
        f"""INSERT INTO contacts (id, customer_id, is_primary, first_name, last_name, full_name,
            email, email_normalized, phone, phone_valid, attributes, tags, created_at, updated_at)
        SELECT g, 1 + (g - 1) % {customers}, g <= {customers}, f, l, f || ' ' || l,
            e, lower(e), '+1' || (2000000000 + g), true, '{{}}', '[]', now(),
            now() - g * interval '1 second'
        FROM generate_series(1, {contacts}) g,
            LATERAL (SELECT ({first})[1 + (g * 7) % {nf}] AS f,
                            ({last})[1 + (g * 13) % {nl}] AS l) names,
            LATERAL (SELECT lower(f) || '.' || lower(l) || g || '@mail' || g % 50 || '.example'
                     AS e) address""",
        f"""INSERT INTO support_cases (id, customer_id, subject, status, priority, channel,
            assignee, first_response_due_at, created_at, updated_at)
        SELECT g, 1 + (g * 31) % {customers},
            initcap(({words})[1 + g % {nw}]) || ' ' || ({words})[1 + (g / 7) % {nw}] || ' '
                || ({words})[1 + (g / 49) % {nw}],
            (ARRAY['new', 'open', 'pending', 'resolved', 'closed'])[1 + g % 5],
            (ARRAY['low', 'normal', 'high', 'urgent'])[1 + g % 4], 'email',
            'agent' || g % 40, now() + (g % 100 - 50) * interval '1 hour', now(),
            now() - g * interval '1 second'
        FROM generate_series(1, {cases}) g""",
        f"""INSERT INTO activities (type, direction, occurred_at, summary, details, customer_id)
        SELECT 'note', 'internal', now() - g * interval '1 minute', 'note ' || g, '{{}}',
            1 + g % {min(2000, customers)}
        FROM generate_series(1, {min(2000, customers) * 100}) g""",
    ]
    engine = create_engine(database_url)
    with engine.begin() as conn:
        for statement in statements:
            conn.execute(text(statement))
        for table in ("customers", "contacts", "support_cases", "activities"):
            conn.execute(
                text(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'),"
                    f" (SELECT max(id) FROM {table}))"
                )
            )
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE"))
    engine.dispose()


def queries(database_url: str, rng: random.Random) -> dict[str, list[str]]:
    """The request paths of each route, drawn from the seeded rows."""
    from sqlalchemy import create_engine, text

    engine = create_engine(database_url)
    with engine.connect() as conn:
        contacts = conn.execute(
            text(
                "SELECT id, full_name, email, phone FROM contacts TABLESAMPLE SYSTEM (1) LIMIT 500"
            )
        ).all()
        busy = [r[0] for r in conn.execute(text("SELECT DISTINCT customer_id FROM activities"))]
    engine.dispose()

    def typo(name: str) -> str:
        at = rng.randrange(1, len(name) - 1)
        return name[:at] + name[at + 1 :]

    def national(phone: str) -> str:
        digits = phone[2:]
        return f"({digits[:3]}) {digits[3:6]}-{digits[6:]}"

    return {
        "baseline": [f"/api/contacts/{c.id}" for c in contacts],
        "search-email": [f"/api/search?q={c.email}" for c in contacts],
        "search-name": [f"/api/search?q={c.full_name.replace(' ', '+')}" for c in contacts],
        "search-typo": [f"/api/search?q={typo(c.full_name).replace(' ', '+')}" for c in contacts],
        "search-phone": [
            "/api/search?q=" + national(c.phone).replace(" ", "+").replace("(", "%28")
            for c in contacts
        ],
        "cases": [
            f"/api/cases?assignee=agent{rng.randrange(40)}&status=open&limit=50" for _ in range(500)
        ],
        "timeline": [f"/api/customers/{rng.choice(busy)}/timeline?limit=50" for _ in range(500)],
    }


def measure(
    port: int, headers: dict[str, str], paths: list[str], count: int, connections: int
) -> tuple[list[float], int]:
    """Latencies of ``count`` GETs over ``connections`` keep-alive connections, each sending
    ``headers``; non-200s."""
    latencies: list[float] = []
    failures = [0]
    lock = threading.Lock()

    def client(index: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        mine = []
        for n in range(index, count, connections):
            began = time.perf_counter()
            conn.request("GET", paths[n % len(paths)], headers=headers)
            response = conn.getresponse()
            response.read()
            mine.append(time.perf_counter() - began)
            if response.status != 200:
                with lock:
                    failures[0] += 1
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return latencies, failures[0]


def quantile(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100)[q - 1] * 1000


@contextmanager
def seeded_database(args: argparse.Namespace) -> Iterator[str]:
    """A scratch database seeded and upgraded to head (dropped afterwards), or, with
    ``--database-url``, one an earlier run seeded and kept, upgraded to head."""
    from crm_core import migrate as schema

    if args.database_url:
        began = time.monotonic()
        schema.upgrade(args.database_url)
        print(f"migrations to head: {time.monotonic() - began:.0f} s", flush=True)
        yield args.database_url
        return
    with scratch_database() as database_url:
        schema.upgrade(database_url, revision="0015")
        began = time.monotonic()
        seed(database_url, args.contacts, args.cases)
        print(f"seeded in {time.monotonic() - began:.0f} s", flush=True)
        began = time.monotonic()
        schema.upgrade(database_url)
        print(f"migrations to head over the rows: {time.monotonic() - began:.0f} s", flush=True)
        yield database_url


def main(args: argparse.Namespace) -> None:
    from crm_core.db import make_engine, make_session_factory
    from crm_core.encryption.keyring import Keyring
    from crm_core.people.api_keys import create_api_key
    from crm_core.people.permissions import Actor

    rng = random.Random(20261203)
    keyring_key = Keyring.generate_key()
    with seeded_database(args) as database_url:
        engine = make_engine(database_url, keyring=Keyring([keyring_key]))
        with make_session_factory(engine).begin() as session:
            _, key = create_api_key(
                session,
                actor=Actor.operator("bench"),
                name=f"bench-{os.getpid()}-{time.time_ns()}",
                scopes=["read"],
            )
        engine.dispose()
        paths = queries(database_url, rng)
        env = {k: v for k, v in os.environ.items() if not k.startswith("CRM_")}
        env.update(
            CRM_DATABASE_URL=database_url,
            CRM_BROKER_URL="memory://",
            CRM_RATELIMIT_URL="memory://",
            CRM_ENCRYPTION_KEYS=keyring_key,
            CRM_DB_POOL_SIZE=str(args.threads),
            CRM_LOG_LEVEL="WARNING",
            PYTHONPATH=os.getcwd(),
        )
        latencies: dict[str, list[float]] = {name: [] for name in paths}
        failures = dict.fromkeys(paths, 0)
        # The real app, as the Procfile runs it.
        headers = {"Authorization": f"Bearer {key}"}
        with gunicorn("intake", env, args) as port:
            measure(port, headers, paths["baseline"], 50, args.connections)  # warm up
            for round_no in range(1, args.rounds + 1):
                for name, route_paths in paths.items():
                    taken, failed = measure(port, headers, route_paths, args.requests,
                                            args.connections)  # fmt: skip
                    latencies[name].extend(taken)
                    failures[name] += failed
                    print(
                        f"round {round_no} {name:13} p50 {quantile(taken, 50):7.1f} ms"
                        f"  p95 {quantile(taken, 95):7.1f} ms",
                        flush=True,
                    )
    report(latencies, failures, args)


def report(
    latencies: dict[str, list[float]], failures: dict[str, int], args: argparse.Namespace
) -> None:
    base95 = quantile(latencies["baseline"], 95)
    print(f"{'route':13} {'requests':>8} {'p50 ms':>8} {'p95 ms':>8} {'p95/base':>9} non-200")
    for name, taken in latencies.items():
        p95 = quantile(taken, 95)
        print(
            f"{name:13} {len(taken):8d} {quantile(taken, 50):8.1f} {p95:8.1f}"
            f" {p95 / base95:8.1f}x {failures[name]:7d}"
        )
    print(
        f"{args.contacts} contacts, {args.cases} cases; gunicorn gthread --workers {args.workers}"
        f" --threads {args.threads}; {args.connections} connections, {args.rounds} rounds of"
        f" {args.requests} requests per route"
    )
    print(
        f"machine: {platform.platform()}, {os.cpu_count()} CPUs (shared), "
        f"Python {platform.python_version()}, database {POSTGRES_URL.rsplit('@', 1)[-1]}"
    )


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--contacts", type=int, default=1_000_000)
    parser.add_argument("--cases", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=400, help="per route per round")
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--reuse-port", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument(
        "--database-url",
        help="Measure a database seeded by this script before (at revision 0015, with the same"
        " --contacts and --cases, then kept) instead of seeding a scratch one.",
    )
    return parser.parse_args()


if __name__ == "__main__":
    main(parse_args())
