"""Benchmark of the inbox's background readers on a large inbox (not a test).

    .venv/bin/python -m bench.inbox_scale [--rows 5000000] [--repeat 5]

On a scratch PostgreSQL database (``CRM_TEST_POSTGRES_URL``) migrated to head, it seeds
``--rows`` inbox events with one INSERT … SELECT over ``generate_series``, shaped like a
platform that has run for a year with the 90-day retention: received evenly over 365 days,
99.9 % ``processed`` (those older than 91 days with their body already removed, as the
retention task leaves them, and one day's worth past the 90 days waiting for it), and a live
backlog: 1,000 ``received`` (50 of them due for the sweeper), 100 ``processing`` (a few with a
timed-out claim), 500 ``failed``, 100 ``dead``, 100 ``invalid``. Bodies are about 400 bytes,
a lead's size.

Then, for each set of indexes on ``inbox_events`` (besides the primary key and the
``(source_id, webhook_id)`` unique key, which intake needs):

- ``none``: no status index at all;
- ``0001``: the two full ``(status, received_at)`` and ``(status, next_attempt_at)`` indexes;
- ``0025``: those two and migration 0025's partial index for the retention task (what ships);
- ``all partial``: those and two more partial indexes for the sweeper (``received`` by id,
  ``processing`` by ``claimed_at``), which 0025 leaves out because they measured no better;
- ``partial only``: the three partial indexes without the full ones,

it times (median of ``--repeat``, each in a transaction rolled back) the real functions: the
sweeper's ``crm_core.ingestion.processing.due_for_sweep``, one batch of the retention task's
``crm_core.ingestion.retention.prune_bodies`` (1,000 rows), and two operator reads that use the
full indexes: ``replayable_ids`` of the failed events (``crm events replay --status failed``)
the counts by status of ``crm status`` (``crm_core.ops.services.backlog``), and the counts of
the unfinished statuses only (what a backlog gauge needs); and prints each index's size.
"""

from __future__ import annotations

import argparse
import datetime as dt
import signal
import statistics
import time
from collections.abc import Callable

from sqlalchemy import Engine, func, select, text
from sqlalchemy.orm import Session

from bench.intake import scratch_database
from crm_core import migrate
from crm_core.db import make_engine
from crm_core.ingestion.models import EventStatus, InboxEvent
from crm_core.ingestion.processing import due_for_sweep, replayable_ids
from crm_core.ingestion.retention import prune_bodies
from crm_core.ops.services import backlog

FULL = {
    "ix_inbox_events_status_received_at": "inbox_events (status, received_at)",
    "ix_inbox_events_status_next_attempt_at": "inbox_events (status, next_attempt_at)",
}
PARTIAL = {
    "ix_inbox_events_waiting": "inbox_events (id) WHERE status = 'received'",
    "ix_inbox_events_processing_claimed_at": (
        "inbox_events (claimed_at) WHERE status = 'processing'"
    ),
    "ix_inbox_events_body_kept_received_at": (
        "inbox_events (received_at) WHERE status IN ('processed', 'ignored')"
        " AND body_removed_at IS NULL"
    ),
}
RETENTION = {
    "ix_inbox_events_body_kept_received_at": PARTIAL["ix_inbox_events_body_kept_received_at"]
}
VARIANTS = {
    "none": {},
    "0001": FULL,
    "0025": {**FULL, **RETENTION},
    "all partial": {**FULL, **PARTIAL},
    "partial only": PARTIAL,
}
# (status, how many) of the live backlog; every other row is processed.
BACKLOG = [
    ("received", 1000),
    ("processing", 100),
    ("failed", 500),
    ("dead", 100),
    ("invalid", 100),
]
SEED = """
INSERT INTO inbox_events (source_id, kind, webhook_id, content_type, headers, body, status,
    attempts, received_at, processed_at, body_removed_at, body_removed_by)
SELECT 1, 'leads', 'wh-' || g, 'application/json', '{}',
    CASE WHEN t < now() - interval '91 days' THEN ''::bytea
         ELSE convert_to('{"email": "person' || g || '@example.com", "full_name": "Person '
              || g || '", "phone": "+4420794' || lpad((g % 100000)::text, 5, '0')
              || '", "company": "Example Ltd", "utm": {"campaign": "winter", "source": "ads"},'
              || ' "consent": {"status": "granted", "method": "checkbox"}, "message": "'
              || repeat('x', 180) || '"}', 'UTF8') END,
    'processed', 1, t, t + interval '2 seconds',
    CASE WHEN t < now() - interval '91 days' THEN t + interval '91 days' END,
    CASE WHEN t < now() - interval '91 days' THEN 'retention' END
FROM (
    SELECT g, now() - (interval '365 days') * (:rows - g)::float / :rows AS t
    FROM generate_series(1, :rows) AS g
) AS s
"""


def seed(engine: Engine, rows: int) -> None:
    with engine.begin() as conn:
        conn.execute(
            text("INSERT INTO sources (id, name, provider) VALUES (1, 'shop', 'standard')")
        )
        conn.execute(text(SEED), {"rows": rows})
        offset = 0
        for status, count in BACKLOG:
            # The newest rows become the backlog: a few claims have timed out, and most waiting
            # events were published a moment ago (the sweeper republishes 1 in 20).
            conn.execute(
                text(
                    "UPDATE inbox_events SET status = CAST(:status AS text), processed_at = NULL,"
                    " claimed_at = CASE WHEN CAST(:status AS text) = 'processing'"
                    " THEN now() - (id % 3) * interval '10 minutes' END,"
                    " next_attempt_at = CASE WHEN CAST(:status AS text) = 'received'"
                    " AND id % 20 <> 0 THEN now() + interval '1 day' END"
                    " WHERE id > :top - :offset - :count AND id <= :top - :offset"
                ),
                {"status": status, "top": rows, "offset": offset, "count": count},
            )
            offset += count
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE inbox_events"))


def use_indexes(engine: Engine, wanted: dict[str, str]) -> None:
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        for name in {**FULL, **PARTIAL}:
            if name not in wanted:
                conn.execute(text(f"DROP INDEX IF EXISTS {name}"))
        for name, spec in wanted.items():
            on, _, where = spec.partition(" WHERE ")
            clause = f" WHERE {where}" if where else ""
            conn.execute(text(f"CREATE INDEX IF NOT EXISTS {name} ON {on}{clause}"))
        conn.execute(text("ANALYZE inbox_events"))


def index_sizes(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT indexrelname, pg_relation_size(indexrelid) FROM pg_stat_user_indexes"
                " WHERE relname = 'inbox_events'"
            )
        )
        return {name: int(size) for name, size in rows}


def timed(engine: Engine, work: Callable[[Session], object], repeat: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeat):
        with engine.connect() as conn, conn.begin() as trans:
            session = Session(bind=conn)
            start = time.perf_counter()
            result = work(session)
            times.append(time.perf_counter() - start)
            session.close()
            trans.rollback()
    return statistics.median(times), result


def sweep(session: Session) -> int:
    return len(
        due_for_sweep(
            session,
            received_grace=dt.timedelta(seconds=5),
            claim_timeout=dt.timedelta(minutes=15),
            republish_after=dt.timedelta(minutes=2),
        )
    )


def retention_batch(session: Session) -> int:
    cutoff = dt.datetime.now(dt.UTC) - dt.timedelta(days=90)
    return prune_bodies(session, cutoff=cutoff, limit=1000)


def failed_for_replay(session: Session) -> int:
    return len(replayable_ids(session, status=EventStatus.FAILED))


def inbox_backlog(session: Session) -> int:
    return sum(backlog(session)["inbox events"].values())


UNFINISHED = [s.value for s in EventStatus if s not in (EventStatus.PROCESSED, EventStatus.IGNORED)]


def unfinished_counts(session: Session) -> int:
    """Counts by status of the events not finished: what a backlog gauge needs."""
    query = (
        select(InboxEvent.status, func.count())
        .where(InboxEvent.status.in_(UNFINISHED))
        .group_by(InboxEvent.status)
    )
    return sum(count for _, count in session.execute(query))


MEASURED: dict[str, Callable[[Session], object]] = {
    "sweeper": sweep,
    "retention": retention_batch,
    "replay": failed_for_replay,
    "counts": inbox_backlog,
    "unfinished": unfinished_counts,
}


def _stop(_signum: int, _frame: object) -> None:
    raise SystemExit("stopped")  # so the scratch database is dropped


def main() -> None:
    signal.signal(signal.SIGTERM, _stop)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with scratch_database() as url:
        migrate.upgrade(url)
        engine = make_engine(url)
        started = time.perf_counter()
        seed(engine, args.rows)
        print(f"seeded {args.rows:,} events in {time.perf_counter() - started:.0f} s")
        with engine.connect() as conn:
            size = conn.execute(text("SELECT pg_total_relation_size('inbox_events')")).scalar_one()
        print(f"inbox_events with its indexes and TOAST: {size / 2**20:,.0f} MiB")
        header = "".join(f"{name + ' ms':>14}" for name in MEASURED)
        print(f"{'indexes':<14}{header}  index sizes (MiB)")
        for variant, wanted in VARIANTS.items():
            started = time.perf_counter()
            use_indexes(engine, wanted)
            built = time.perf_counter() - started
            results = {name: timed(engine, work, args.repeat) for name, work in MEASURED.items()}
            sizes = index_sizes(engine)
            shown = ", ".join(f"{n}={sizes.get(n, 0) / 2**20:.1f}" for n in wanted) or "-"
            cells = "".join(f"{seconds * 1000:>14.1f}" for seconds, _ in results.values())
            found = ", ".join(f"{name} {found}" for name, (_, found) in results.items())
            print(f"{variant:<14}{cells}  {shown}  ({found}; built in {built:.0f} s)")
        engine.dispose()


if __name__ == "__main__":
    main()
