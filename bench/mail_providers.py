"""Benchmark of inbound mail through an e-mail provider beside the IMAP path (not a test).

    .venv/bin/python -m bench.mail_providers [--messages 2000] [--concurrency 2] [--senders 4]

Measures, in the same run on the same machine, two ways the same support
requests (``tests/imap_server.support_request``, ~1.5 KB each, one customer
each, a case each) reach the platform:

1. the baseline, the IMAP path (``bench.imap.end_to_end``): a private Dovecot
   mailbox read by the poller, one committed inbox event per message, ONE
   worker (``--concurrency``) threading each and opening its case in a scratch
   PostgreSQL database;
2. Postmark: the same messages posted as Postmark's inbound JSON (``FromFull``,
   ``ToFull``, ``Subject``, ``Date``, ``Headers``, ``TextBody``) with the
   source's Basic credentials, by ``--senders`` threads through gunicorn, each
   stored and published by the intake and put back together as RFC 5322 by ONE
   worker (``--concurrency``), which then files it exactly as the IMAP path
   does, in another scratch database. Timed from the first post until the last
   event is processed.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import threading
import time
import uuid
from email import message_from_bytes, policy
from email.utils import getaddresses

from sqlalchemy import func, select

from bench.imap import _child_env, end_to_end
from bench.intake import gunicorn, private_redis, scratch_database, wait_for
from bench.pipeline import worker

SUPPORT = "support@acme.test"


def postmark_inbound(raw: bytes) -> bytes:
    """A support request as Postmark's inbound webhook posts it."""
    message = message_from_bytes(raw, policy=policy.default)
    [(name, address)] = getaddresses([str(message["From"])])
    body = message.get_body(("plain",))
    text = body.get_content() if body is not None else ""  # type: ignore[attr-defined]
    document = {
        "FromName": name,
        "MessageStream": "inbound",
        "From": address,
        "FromFull": {"Email": address, "Name": name, "MailboxHash": ""},
        "To": SUPPORT,
        "ToFull": [{"Email": SUPPORT, "Name": "", "MailboxHash": ""}],
        "CcFull": [],
        "Subject": str(message["Subject"]),
        "MessageID": str(uuid.uuid4()),
        "Date": str(message["Date"]),
        "TextBody": text,
        "HtmlBody": "",
        "StrippedTextReply": "",
        "Headers": [
            {"Name": "X-Spam-Status", "Value": "No"},
            {"Name": "MIME-Version", "Value": "1.0"},
            {"Name": "Message-ID", "Value": str(message["Message-ID"])},
        ],
        "Attachments": [],
    }
    return json.dumps(document).encode()


def through_postmark(bodies: list[bytes], args: argparse.Namespace) -> dict[str, float]:
    from crm_core import migrate
    from crm_core import models as m
    from crm_core.db import make_engine, make_session_factory
    from crm_core.encryption.keyring import Keyring
    from crm_core.ingestion import services

    key = Keyring.generate_key()
    with scratch_database() as url, private_redis() as broker:
        migrate.upgrade(url)
        engine = make_engine(url, keyring=Keyring([key]))
        sessions = make_session_factory(engine)
        with sessions.begin() as session:
            _, credentials = services.create_source(
                session, name="postmark", provider="postmark", rate_limit_per_minute=0
            )
        assert credentials is not None
        env = _child_env(
            {
                "CRM_DATABASE_URL": url,
                "CRM_BROKER_URL": broker,
                "CRM_BROKER_KEY_PREFIX": f"bench-{uuid.uuid4().hex[:6]}:",
                "CRM_RATELIMIT_URL": "memory://",
                "CRM_SUPPORT_ADDRESSES": SUPPORT,
                "CRM_SECRET_KEY": "bench",
                "CRM_ENCRYPTION_KEYS": key,
            }
        )
        web = argparse.Namespace(workers=1, threads=args.senders, reuse_port=False)

        def processed() -> int:
            with sessions() as session:
                query = select(func.count()).where(m.InboxEvent.status == "processed")
                return session.scalar(query) or 0

        with gunicorn("intake", env, web) as port, worker(env, args.concurrency):
            time.sleep(3)
            started = time.perf_counter()
            posted = _post_all(port, credentials, bodies, args.senders)
            post_seconds = time.perf_counter() - started
            wait_for(lambda: processed() >= len(bodies), "every message processed", timeout=3600)
            total_seconds = time.perf_counter() - started
        with sessions() as session:
            cases = session.scalar(select(func.count()).select_from(m.SupportCase)) or 0
        engine.dispose()
    return {"posted": posted, "post_s": post_seconds, "total_s": total_seconds, "cases": cases}


def _post_all(port: int, credentials: str, bodies: list[bytes], senders: int) -> int:
    import requests

    headers = {
        "Content-Type": "application/json",
        "Authorization": "Basic " + base64.b64encode(credentials.encode()).decode(),
    }
    url = f"http://127.0.0.1:{port}/webhooks/postmark"
    accepted = [0] * senders

    def send(index: int) -> None:
        with requests.Session() as session:
            for body in bodies[index::senders]:
                response = session.post(url, data=body, headers=headers, timeout=30)
                response.raise_for_status()
                accepted[index] += 1

    threads = [threading.Thread(target=send, args=(i,)) for i in range(senders)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(accepted)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--senders", type=int, default=4)
    args = parser.parse_args()
    from tests.imap_server import dovecot_server, support_request

    raws = [support_request(n, padding=1500) for n in range(args.messages)]
    bodies = [postmark_inbound(raw) for raw in raws]
    with contextlib.ExitStack() as stack:
        server = stack.enter_context(dovecot_server())
        server.append_many(raws)
        imap = end_to_end(server, args.messages, args)
    postmark = through_postmark(bodies, args)
    imap_rate = args.messages / imap["total_s"]
    postmark_rate = args.messages / postmark["total_s"]
    print(
        f"\nIMAP: {imap['polled']:.0f} stored in {imap['poll_s']:.1f} s, all processed in "
        f"{imap['total_s']:.1f} s = {imap_rate:,.0f} messages/s; {imap['cases']:.0f} cases"
    )
    print(
        f"Postmark: {postmark['posted']:.0f} posted in {postmark['post_s']:.1f} s "
        f"({postmark['posted'] / postmark['post_s']:,.0f}/s accepted), all processed in "
        f"{postmark['total_s']:.1f} s = {postmark_rate:,.0f} messages/s; "
        f"{postmark['cases']:.0f} cases"
    )
    print(f"Postmark / IMAP: {postmark_rate / imap_rate:.1%}")


if __name__ == "__main__":
    main()
