"""5,000 messages read in batches: memory follows the batch, not the mailbox."""

from __future__ import annotations

import tracemalloc

import pytest

from crm_core.mailboxes.imap import FetchedMessage, poll
from tests.imap_server import (
    DovecotServer,
    imap_server_fixture,  # noqa: F401 - the fixture imap_server
    message_id_of,
    support_request,
)

COUNT = 5000
BATCH = 200
PADDING = 4000


@pytest.mark.slow
def test_a_large_mailbox_is_read_within_a_batch_of_memory(imap_server: DovecotServer) -> None:
    imap_server.append_many(support_request(n, padding=PADDING) for n in range(1, COUNT + 1))
    assert imap_server.message_count() == COUNT
    message_bytes = len(support_request(COUNT, padding=PADDING))
    mailbox_bytes = COUNT * message_bytes
    batch_bytes = BATCH * message_bytes
    message_ids: set[str | None] = set()

    def store(message: FetchedMessage) -> bool:
        # Keep only the id: the test measures the reader, not this callback.
        message_ids.add(message_id_of(message.raw))
        return True

    mailbox = imap_server.mailbox()
    tracemalloc.start()
    try:
        result = poll(mailbox, store=store, batch_size=BATCH, max_bytes=batch_bytes)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert (result.stored, len(message_ids), mailbox.last_uid) == (COUNT, COUNT, COUNT)
    # A batch is 1/25 of the mailbox; allow a few batches' worth for imaplib's buffers.
    assert peak < 4 * batch_bytes, (peak, batch_bytes, mailbox_bytes)
    assert peak < mailbox_bytes / 5
    assert all("\\Seen" in flags for flags in imap_server.flags().values())
