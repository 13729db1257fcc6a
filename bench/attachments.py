"""Benchmark of keeping e-mail attachments, beside filing the same mail without (not a test).

    .venv/bin/python -m bench.attachments [--messages 300] [--kb 200]

Files ``--messages`` support requests, each with a PDF of ``--kb`` KB (different
bytes each), into a scratch PostgreSQL database, three times in the same run:

1. the baseline: parse and file each message (a case, its Activities) keeping only
   the attachment's digest, as before attachments were kept;
2. the same, each attachment's bytes also written to a folder (``var/blobs`` by
   default) and recorded;
3. the same, into a bucket on a local S3-compatible server (moto, in server mode:
   its speed is not a real S3's, but the client's work is the platform's).

One transaction per message, committed, as the worker does.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import tempfile
import time
import uuid
from pathlib import Path

from bench.intake import scratch_database


def messages(count: int, size: int, run: str) -> list[bytes]:
    from tests.crm_core.attachments.mail import message_with

    return [
        message_with(
            ("report.pdf", "application/pdf", os.urandom(size)),
            sender=f"c{n}@customer{n}.example.com",
            message_id=f"<{run}-{n}@customer.example.com>",
        )
        for n in range(count)
    ]


def file_all(url: str, raws: list[bytes], store) -> float:  # type: ignore[no-untyped-def]
    from crm_core.db import make_engine, make_session_factory
    from crm_core.mail import parse_rfc822
    from crm_core.support.inbound_mail import receive_email
    from tests.crm_core.support.test_inbound_mail import CONTEXT

    context = dataclasses.replace(CONTEXT, blobs=store)
    engine = make_engine(url)
    sessions = make_session_factory(engine)
    started = time.perf_counter()
    for raw in raws:
        with sessions.begin() as session:
            receive_email(session, parsed=parse_rfc822(raw), context=context)
    elapsed = time.perf_counter() - started
    engine.dispose()
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=300)
    parser.add_argument("--kb", type=int, default=200)
    args = parser.parse_args()

    import boto3
    from moto.server import ThreadedMotoServer

    from crm_core import migrate
    from crm_core.blobs.filesystem import FileBlobStore
    from crm_core.blobs.s3 import S3BlobStore
    from tests.services import free_port

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's request log
    port = free_port()
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    moto.start()
    client = boto3.client(
        "s3",
        endpoint_url=f"http://127.0.0.1:{port}",
        aws_access_key_id="bench",
        aws_secret_access_key="bench",  # moto accepts any
        region_name="us-east-1",
    )
    client.create_bucket(Bucket="bench")
    rows = []
    try:
        with tempfile.TemporaryDirectory() as folder:
            stores = {
                "digest only (before)": None,
                "folder": FileBlobStore(Path(folder) / "blobs"),
                "S3 (moto on loopback)": S3BlobStore(bucket="bench", prefix="b", client=client),
            }
            # A short untimed round first: imports, connections and caches warm for all three.
            with scratch_database() as url:
                migrate.upgrade(url)
                file_all(url, messages(10, 1024, uuid.uuid4().hex), None)
            for name, store in stores.items():
                with scratch_database() as url:
                    migrate.upgrade(url)
                    raws = messages(args.messages, args.kb * 1024, uuid.uuid4().hex)
                    seconds = file_all(url, raws, store)
                rows.append((name, args.messages, seconds))
    finally:
        moto.stop()
    print(f"| {args.messages} messages, one {args.kb} KB attachment each | seconds | messages/s |")
    print("|---|---:|---:|")
    for name, count, seconds in rows:
        print(f"| {name} | {seconds:.2f} | {count / seconds:.0f} |")


if __name__ == "__main__":
    main()
