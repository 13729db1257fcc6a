"""CPU time per lead event processed in this process, in batches and one by one (not a test).

    .venv/bin/python -m bench.lead_cpu [--existing 10000] [--batched 2000] [--single 300]

On a scratch PostgreSQL database seeded like ``bench.pipeline``'s, it claims
and processes stored lead events as the worker does: ``--batched`` events in
batches of 100, then ``--single`` events one at a time. CPU time does not
depend on what else the machine runs, so this tells two versions of the code
apart where the worker benchmark's drain rates are too noisy to.
"""

from __future__ import annotations

import argparse
import time
import uuid

from bench.intake import scratch_database
from bench.pipeline import seed_contacts, store_leads


def main() -> None:
    from crm_core import migrate
    from crm_core.config import get_settings
    from crm_core.db import make_engine, make_session_factory
    from crm_core.ingestion.batching import run_batch
    from crm_core.ingestion.policy import IngestPolicy
    from crm_core.ingestion.processing import claim_events
    from crm_core.ingestion.services import create_source
    from crm_core.ingestion.single_event import run_event

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--existing", type=int, default=10_000)
    parser.add_argument("--batched", type=int, default=2000)
    parser.add_argument("--single", type=int, default=300)
    args = parser.parse_args()
    with scratch_database() as url:
        migrate.upgrade(url)
        engine = make_engine(url)
        seed_contacts(engine, args.existing)
        sessions = make_session_factory(engine)
        with sessions.begin() as session:
            source_id = create_source(session, name="bench")[0].id
        for label, count, per in (
            ("batches of 100", args.batched, 100),
            ("one by one", args.single, 1),
        ):
            ids = store_leads(engine, source_id, count, uuid.uuid4().hex[:6])
            cpu, wall = time.process_time(), time.perf_counter()
            for start in range(0, len(ids), per):
                chunk = ids[start : start + per]
                with sessions.begin() as session:
                    claim_events(session, event_ids=chunk)
                with sessions.begin() as session:
                    if per > 1:
                        run_batch(
                            session,
                            kind="leads",
                            event_ids=chunk,
                            policy=IngestPolicy.from_settings(get_settings()),
                        )
                    else:
                        run_event(
                            session,
                            event_id=chunk[0],
                            policy=IngestPolicy.from_settings(get_settings()),
                        )
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
            print(f"{label}: CPU {1000 * cpu / count:.2f} ms/event, wall {1000 * wall / count:.2f}")
        engine.dispose()


if __name__ == "__main__":
    main()
