"""Benchmark of the console's pages beside a baseline, at a million contacts (not a test).

    .venv/bin/python -m bench.console [--contacts 1000000] [--cases 100000] [--events 200000]
                                      [--opportunities 100000] [--sends 200000]
                                      [--requests 200] [--connections 4] [--rounds 3]

Fills a scratch PostgreSQL database as ``bench.api`` does (customers, ``--contacts``
contacts, ``--cases`` cases, 100 Activities for each of 2,000 customers), adds ``--events``
inbox events spread over the last 24 hours in every status, then upgrades it to head and
counts the event-rate rollup once, as beat does every minute (no beat runs during the
measurement, so the quarter hours that close meanwhile are read from the inbox). The real
app runs under gunicorn as the Procfile starts it; a signed-in admin's session cookie is sent
with each request, from ``--connections`` keep-alive clients, for ``--rounds`` rounds:

- ``baseline``: ``GET /api/contacts/<id>`` with an API key (one row by primary key);
- ``overview``: ``GET /console/overview/live`` (what the overview refreshes: the chart of a
  day's events, the backlog, workers, SLA, campaigns);
- ``events``: ``GET /console/events?status=failed`` (a page of 50);
- ``event``: ``GET /console/events/<id>``;
- ``people``: ``GET /console/people`` (the customers changed last);
- ``search``: ``GET /console/people?q=<an address>``;
- ``customer``: ``GET /console/people/customers/<id>`` (a customer with 100 Activities);
- ``cases``: ``GET /console/cases`` (the agent's inbox: mine and unassigned, by SLA due time);
- ``case``: ``GET /console/cases/<id>``;
- ``pipeline``: ``GET /console/pipeline`` (the board of ``--opportunities`` deals, totals per
  stage);
- ``campaigns``: ``GET /console/campaigns``;
- ``campaign``: ``GET /console/campaigns/<id>`` (a campaign of ``--sends`` sends, with its stats);
- ``settings``: ``GET /console/settings`` (sources, keys, users, mailboxes, suppressions).

It prints p50 and p95 per page, and each p95 over the baseline's.
"""

from __future__ import annotations

import argparse
import http.client
import os
import random
import re
import time
from urllib.parse import urlencode

from bench.api import measure, quantile, report, seed
from bench.intake import gunicorn, scratch_database

PASSWORD = "bench password 1234"


def seed_events(database_url: str, events: int) -> None:
    """``events`` inbox events of one source over the last day, a tenth of them failed."""
    from sqlalchemy import create_engine, text

    engine = create_engine(database_url)
    with engine.begin() as conn:
        source = conn.execute(
            text(
                "INSERT INTO sources (name, provider, enabled, created_at, updated_at)"
                " VALUES ('website', 'standard', true, now(), now()) RETURNING id"
            )
        ).scalar_one()
        conn.execute(
            text(
                f"""INSERT INTO inbox_events (source_id, kind, webhook_id, content_type, headers,
                    body, status, attempts, received_at)
                SELECT {source}, (ARRAY['leads', 'leads', 'orders', 'emails'])[1 + g % 4],
                    'msg_' || g, 'application/json', '{{}}',
                    convert_to('{{"email": "lead' || g || '@example.com"}}', 'UTF8'),
                    (ARRAY['processed', 'processed', 'processed', 'processed', 'processed',
                           'processed', 'processed', 'processed', 'failed', 'dead'])[1 + g % 10],
                    1, now() - (g % 86400) * interval '1 second'
                FROM generate_series(1, {events}) g"""
            )
        )
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        # What autovacuum does after a bulk load: the visibility map lets the counts of the
        # overview read their indexes alone.
        conn.execute(text("VACUUM ANALYZE inbox_events"))
        conn.execute(text("VACUUM ANALYZE support_cases"))
    engine.dispose()


def seed_sales(database_url: str, opportunities: int, sends: int) -> None:
    """``opportunities`` deals in every stage; 20 campaigns, the first started an hour ago with
    ``sends`` sends, a message recorded for each one sent (1 in 100 reported bounced); and a
    year of suppressions (one contact in 200, made evenly over the last 365 days)."""
    from sqlalchemy import create_engine, text

    engine = create_engine(database_url)
    with engine.begin() as conn:
        customers = conn.execute(text("SELECT max(id) FROM customers")).scalar_one()
        conn.execute(
            text(
                f"""INSERT INTO opportunities (customer_id, name, stage, amount, currency, owner,
                    version, created_at, updated_at)
                SELECT 1 + (g * 17) % {customers}, 'Deal ' || g,
                    (ARRAY['new', 'qualified', 'proposal', 'won', 'lost'])[1 + g % 5],
                    1000 + g % 50000, 'EUR', 'rep' || g % 25, 1, now(),
                    now() - g * interval '1 second'
                FROM generate_series(1, {opportunities}) g"""
            )
        )
        conn.execute(
            text(
                """INSERT INTO marketing_campaigns (code, name, status, subject, text_template,
                    segment, current_run, version, created_at, updated_at)
                SELECT 'bench-' || g, 'Campaign ' || g,
                    (ARRAY['sending', 'sent', 'draft', 'scheduled', 'paused'])[1 + g % 5],
                    'News ' || g, 'Hello {{ contact.first_name }}', '{}', 1, 1, now(),
                    now() - g * interval '1 hour'
                FROM generate_series(0, 19) g"""
            )
        )
        conn.execute(
            text(
                "UPDATE marketing_campaigns SET started_at = now() - interval '1 hour'"
                " WHERE status <> 'draft' AND status <> 'scheduled'"
            )
        )
        campaign = conn.execute(
            text("SELECT id FROM marketing_campaigns WHERE code = 'bench-0'")
        ).scalar_one()
        conn.execute(
            text(
                f"""INSERT INTO campaign_sends (campaign_id, contact_id, run, email, status,
                    attempts, created_at)
                SELECT {campaign}, c.id, 1, c.email,
                    (ARRAY['sent', 'sent', 'sent', 'sent', 'sent', 'sent', 'pending', 'pending',
                           'failed', 'unknown'])[1 + c.id % 10], 1, now()
                FROM contacts c WHERE c.id <= {sends}"""
            )
        )
        conn.execute(
            text(
                f"""INSERT INTO sent_messages (message_id, recipient, kind, sent_at,
                    campaign_send_id, report_outcome, reported_at)
                SELECT 'bench.' || s.id || '@crm.example', s.email, 'campaign', now(), s.id,
                    CASE WHEN s.id % 100 = 0 THEN 'bounced' END,
                    CASE WHEN s.id % 100 = 0 THEN now() END
                FROM campaign_sends s WHERE s.campaign_id = {campaign} AND s.status = 'sent'"""
            )
        )
        conn.execute(
            text(
                """INSERT INTO suppressions (email_normalized, reason, created_at, updated_at)
                SELECT email_normalized,
                    (ARRAY['unsubscribed', 'bounced', 'complained', 'manual'])[1 + id % 4],
                    now() - (id % 365) * interval '1 day' - (id % 24) * interval '1 hour',
                    now()
                FROM contacts WHERE id % 200 = 0"""
            )
        )
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE opportunities"))
        for table in ("campaign_sends", "sent_messages", "suppressions"):
            conn.execute(text(f"VACUUM ANALYZE {table}"))
    engine.dispose()


def roll_up(database_url: str) -> None:
    """What beat does every minute: the closed quarter hours counted into the rollup."""
    from crm_core.db import make_engine, make_session_factory, utcnow
    from crm_core.ops import rollup

    engine = make_engine(database_url)
    with make_session_factory(engine).begin() as session:
        rollup.roll_up_event_rates(session, now=utcnow())
    engine.dispose()


def explain(database_url: str) -> None:
    """EXPLAIN ANALYZE of the overview's heaviest queries, printed before the run."""
    from sqlalchemy import func, select, text
    from sqlalchemy.dialects import postgresql

    from crm_core.db import make_engine, utcnow
    from crm_core.ops import dashboard, rollup

    now = utcnow()
    live = select(func.count()).where(
        dashboard.InboxEvent.status.in_([s.value for s in dashboard.EventStatus]),
        dashboard.InboxEvent.received_at >= rollup.bucket_floor(now),
    )
    queries = {
        "SLA-breach count": dashboard.breach_count(now),
        "events of the open bucket": live,
    }
    engine = make_engine(database_url)
    with engine.connect() as conn:
        for name, query in queries.items():
            sql = query.compile(
                dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True}
            )
            plan = conn.execute(text(f"EXPLAIN (ANALYZE, BUFFERS) {sql}")).scalars()
            print(f"-- {name}\n" + "\n".join(plan), flush=True)
    engine.dispose()


def sign_in(port: int) -> str:
    """The Cookie header of a signed-in admin's session."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("GET", "/console/signin")
    page = conn.getresponse()
    cookie = page.getheader("Set-Cookie", "").split(";")[0]
    found = re.search(r'name="csrf-token" content="([^"]+)"', page.read().decode())
    assert found, "no CSRF token on the sign-in page"
    body = urlencode({"email": "bench@example.com", "password": PASSWORD, "csrf_token": found[1]})
    headers = {"Cookie": cookie, "Content-Type": "application/x-www-form-urlencoded"}
    conn.request("POST", "/console/signin", body=body, headers=headers)
    answer = conn.getresponse()
    answer.read()
    assert answer.status == 303, answer.status
    return answer.getheader("Set-Cookie", "").split(";")[0]


def pages(database_url: str, rng: random.Random) -> dict[str, list[str]]:
    from sqlalchemy import create_engine, text

    engine = create_engine(database_url)
    with engine.connect() as conn:
        contacts = conn.execute(
            text("SELECT id, email FROM contacts TABLESAMPLE SYSTEM (1) LIMIT 300")
        ).all()
        busy = [r[0] for r in conn.execute(text("SELECT DISTINCT customer_id FROM activities"))]
        failed = list(
            conn.scalars(text("SELECT id FROM inbox_events WHERE status = 'failed' LIMIT 300"))
        )
        cases = list(conn.scalars(text("SELECT id FROM support_cases ORDER BY random() LIMIT 300")))
        campaign = conn.scalar(text("SELECT id FROM marketing_campaigns WHERE code = 'bench-0'"))
    engine.dispose()
    return {
        "baseline": [f"/api/contacts/{c.id}" for c in contacts],
        "overview": ["/console/overview/live"],
        "events": ["/console/events?status=failed"],
        "event": [f"/console/events/{e}" for e in failed],
        "people": ["/console/people"],
        "search": [f"/console/people?q={c.email}" for c in contacts],
        "customer": [f"/console/people/customers/{rng.choice(busy)}" for _ in range(300)],
        "cases": ["/console/cases"],
        "case": [f"/console/cases/{rng.choice(cases)}" for _ in range(300)],
        "pipeline": ["/console/pipeline"],
        "campaigns": ["/console/campaigns"],
        "campaign": [f"/console/campaigns/{campaign}"],
        "settings": ["/console/settings"],
    }


def main(args: argparse.Namespace) -> None:
    from crm_core import migrate as schema
    from crm_core.db import make_engine, make_session_factory
    from crm_core.encryption.keyring import Keyring
    from crm_core.people.api_keys import create_api_key
    from crm_core.people.permissions import Actor
    from crm_core.people.users import add_user

    rng = random.Random(20261203)
    keyring_key = Keyring.generate_key()
    with scratch_database() as database_url:
        schema.upgrade(database_url, revision="0015")
        began = time.monotonic()
        seed(database_url, args.contacts, args.cases)
        schema.upgrade(database_url)
        seed_events(database_url, args.events)
        seed_sales(database_url, args.opportunities, args.sends)
        roll_up(database_url)
        explain(database_url)
        print(f"seeded and migrated in {time.monotonic() - began:.0f} s", flush=True)
        engine = make_engine(database_url, keyring=Keyring([keyring_key]))
        with make_session_factory(engine).begin() as session:
            operator = Actor.operator("bench")
            _, key = create_api_key(session, actor=operator, name="bench", scopes=["read"])
            add_user(
                session, actor=operator, email="bench@example.com", role="admin", password=PASSWORD
            )
        engine.dispose()
        paths = pages(database_url, rng)
        env = {k: v for k, v in os.environ.items() if not k.startswith("CRM_")}
        env.update(
            CRM_DATABASE_URL=database_url,
            CRM_BROKER_URL="memory://",
            CRM_RATELIMIT_URL="memory://",
            CRM_ENCRYPTION_KEYS=keyring_key,
            CRM_SECRET_KEY="bench secret key",
            CRM_DB_POOL_SIZE=str(args.threads),
            CRM_LOG_LEVEL="WARNING",
            PYTHONPATH=os.getcwd(),
        )
        latencies: dict[str, list[float]] = {name: [] for name in paths}
        failures = dict.fromkeys(paths, 0)
        with gunicorn("intake", env, args) as port:
            cookie = sign_in(port)
            headers = {"Cookie": cookie, "Authorization": f"Bearer {key}"}
            measure(port, headers, paths["baseline"], 50, args.connections)  # warm up
            for round_no in range(1, args.rounds + 1):
                for name, route_paths in paths.items():
                    taken, failed = measure(port, headers, route_paths, args.requests,
                                            args.connections)  # fmt: skip
                    latencies[name].extend(taken)
                    failures[name] += failed
                    print(
                        f"round {round_no} {name:9} p50 {quantile(taken, 50):7.1f} ms"
                        f"  p95 {quantile(taken, 95):7.1f} ms",
                        flush=True,
                    )
    report(latencies, failures, args)
    print(f"{args.events} inbox events over the last 24 hours")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--contacts", type=int, default=1_000_000)
    parser.add_argument("--cases", type=int, default=100_000)
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--opportunities", type=int, default=100_000)
    parser.add_argument("--sends", type=int, default=200_000, help="of the campaign shown")
    parser.add_argument("--requests", type=int, default=200, help="per page per round")
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--reuse-port", action=argparse.BooleanOptionalAction, default=True)
    return parser.parse_args()


if __name__ == "__main__":
    main(parse_args())
