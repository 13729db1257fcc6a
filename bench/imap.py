"""Benchmark of the support inbox over IMAP, beside a raw imaplib fetch (not a test).

    .venv/bin/python -m bench.imap [--messages 5000] [--batch 200] [--concurrency 2]

Starts a private Dovecot (Debian's ``dovecot-imapd``), fills a mailbox with
``--messages`` support requests (~1.5 KB each, one customer each) and measures,
in the same run:

1. the baseline: ``imaplib`` logs in and fetches every message with
   ``UID FETCH … BODY.PEEK[]`` in batches of ``--batch`` — no parsing, no storing;
2. end to end: the platform's poller reads the same mailbox (batches of
   ``--batch``, one committed inbox event per message, ``\\Seen`` after the
   commit) and publishes each event to a private Redis, where ONE worker
   (``--concurrency``) threads it, opens a case for it and records the
   Activities in a scratch PostgreSQL database; timed until the last event is
   processed.
"""

from __future__ import annotations

import argparse
import contextlib
import time
import uuid

from celery import Celery
from sqlalchemy import func, select

from bench.intake import private_redis, scratch_database, wait_for
from bench.pipeline import worker


def raw_fetch(server, batch: int) -> tuple[int, int, float]:  # type: ignore[no-untyped-def]
    """Messages and bytes fetched by plain imaplib, and the seconds it took."""
    started = time.perf_counter()
    count = size = 0
    with server.client() as conn:
        conn.select("INBOX", readonly=True)
        _, data = conn.uid("SEARCH", None, "ALL")
        uids = data[0].split()
        for start in range(0, len(uids), batch):
            chunk = b",".join(uids[start : start + batch]).decode()
            _, parts = conn.uid("FETCH", chunk, "(BODY.PEEK[])")
            for part in parts:
                if isinstance(part, tuple):
                    count += 1
                    size += len(part[1])
    return count, size, time.perf_counter() - started


def end_to_end(server, messages: int, args: argparse.Namespace) -> dict[str, float]:  # type: ignore[no-untyped-def]
    from crm_core import migrate
    from crm_core import models as m
    from crm_core.db import make_engine, make_session_factory
    from crm_core.encryption.keyring import Keyring
    from crm_core.mailboxes.polling import PollLimits, poll_mailbox
    from crm_core.mailboxes.services import add_mailbox

    key = Keyring.generate_key()
    with scratch_database() as url, private_redis() as broker:
        migrate.upgrade(url)
        engine = make_engine(url, keyring=Keyring([key]))
        sessions = make_session_factory(engine)
        with sessions.begin() as session:
            mailbox_id = add_mailbox(session, name="support", url=server.url()).id
        prefix = f"bench-{uuid.uuid4().hex[:6]}:"
        env = {
            "CRM_DATABASE_URL": url,
            "CRM_BROKER_URL": broker,
            "CRM_BROKER_KEY_PREFIX": prefix,
            "CRM_SUPPORT_ADDRESSES": "support@acme.test",
            "CRM_SECRET_KEY": "bench",
            "CRM_ENCRYPTION_KEYS": key,
        }
        publisher = Celery("bench", broker=broker)
        publisher.conf.broker_transport_options = {"global_keyprefix": prefix}

        def publish(event_id: int) -> None:
            publisher.send_task("crm.ingest.process_events", args=[[event_id]], queue="ingest")

        def processed() -> int:
            with sessions() as session:
                query = select(func.count()).where(m.InboxEvent.status == "processed")
                return session.scalar(query) or 0

        with worker(_child_env(env), args.concurrency):
            time.sleep(3)
            started = time.perf_counter()
            polled = 0
            while True:
                result = poll_mailbox(
                    sessions.begin,
                    mailbox_id=mailbox_id,
                    owner="bench",
                    publish=publish,
                    limits=PollLimits(batch_size=args.batch),
                )
                assert result is not None, "the poll failed"
                polled += result.stored
                if result.stored == 0:
                    break
            poll_seconds = time.perf_counter() - started
            wait_for(lambda: processed() >= messages, "every message processed", timeout=3600)
            total_seconds = time.perf_counter() - started
        with sessions() as session:
            cases = session.scalar(select(func.count()).select_from(m.SupportCase)) or 0
        engine.dispose()
    return {"polled": polled, "poll_s": poll_seconds, "total_s": total_seconds, "cases": cases}


def _child_env(values: dict[str, str]) -> dict[str, str]:
    import os

    from bench.intake import ROOT

    env = {k: v for k, v in os.environ.items() if not k.startswith("CRM_")}
    return {**env, **values, "PYTHONPATH": str(ROOT)}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--batch", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=2)
    args = parser.parse_args()
    from tests.imap_server import dovecot_server, support_request

    with contextlib.ExitStack() as stack:
        server = stack.enter_context(dovecot_server())
        server.append_many(support_request(n, padding=1500) for n in range(args.messages))
        fetched, size, raw_seconds = raw_fetch(server, args.batch)
        result = end_to_end(server, args.messages, args)
    raw_rate = fetched / raw_seconds
    print(f"\nraw imaplib fetch: {fetched} messages, {size / 1e6:.1f} MB in {raw_seconds:.2f} s")
    print(f"  = {raw_rate:,.0f} messages/s")
    e2e_rate = args.messages / result["total_s"]
    print(
        f"end to end: {result['polled']:.0f} stored in {result['poll_s']:.1f} s "
        f"({result['polled'] / result['poll_s']:,.0f}/s polling), all processed in "
        f"{result['total_s']:.1f} s = {e2e_rate:,.0f} messages/s; {result['cases']:.0f} cases"
    )
    print(f"end to end / raw fetch: {e2e_rate / raw_rate:.1%}")


if __name__ == "__main__":
    main()
