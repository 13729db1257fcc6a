"""The IMAP reader against a real Dovecot: each message stored once, then flagged, never lost."""

from __future__ import annotations

import imaplib
from collections.abc import Iterator

import pytest

from crm_core.mailboxes import imap, imap_protocol
from crm_core.mailboxes.imap import (
    FetchedMessage,
    MailboxError,
    PollResult,
    SkippedMessage,
    check,
    poll,
)
from crm_core.mailboxes.imap_protocol import folder_argument
from crm_core.mailboxes.models import Mailbox
from tests.imap_server import (
    DovecotServer,
    dovecot_server,
    imap_server_fixture,  # noqa: F401 - the fixture imap_server
    message_id_of,
    support_request,
)


class Recorder:
    """A store callback that keeps what it was given and dedupes by Message-ID."""

    def __init__(self) -> None:
        self.messages: list[FetchedMessage] = []
        self.message_ids: set[str | None] = set()

    def __call__(self, message: FetchedMessage) -> bool:
        self.messages.append(message)
        message_id = message_id_of(message.raw)
        if message_id in self.message_ids:
            return False
        self.message_ids.add(message_id)
        return True

    @property
    def uids(self) -> list[int]:
        return [m.uid for m in self.messages]


def seen(server: DovecotServer, folder: str = "INBOX") -> dict[int, bool]:
    return {uid: "\\Seen" in flags for uid, flags in server.flags(folder=folder).items()}


def test_each_message_is_stored_once_then_seen(imap_server: DovecotServer) -> None:
    imap_server.append(support_request(n) for n in range(1, 8))
    mailbox, store = imap_server.mailbox(), Recorder()
    result = poll(mailbox, store=store, batch_size=3)
    assert store.uids == [1, 2, 3, 4, 5, 6, 7]
    assert store.messages[0].raw == support_request(1)
    assert (result.stored, result.duplicates, result.skipped, result.more) == (7, 0, [], False)
    assert mailbox.last_uid == result.last_uid == 7
    assert mailbox.uidvalidity == result.uidvalidity
    assert seen(imap_server) == dict.fromkeys(range(1, 8), True)

    # "UID SEARCH UID 8:*" still answers UID 7: nothing is fetched twice.
    assert poll(mailbox, store=store).stored == 0
    imap_server.append([support_request(8)])
    poll(mailbox, store=store)
    assert store.uids == [1, 2, 3, 4, 5, 6, 7, 8]
    assert seen(imap_server)[8]


def test_fetching_leaves_messages_unread_until_stored(imap_server: DovecotServer) -> None:
    imap_server.append(support_request(n) for n in range(1, 6))
    mailbox = imap_server.mailbox()

    def failing_store(message: FetchedMessage) -> bool:
        if message.uid == 3:
            raise RuntimeError("database unavailable")
        return True

    with pytest.raises(RuntimeError, match="database unavailable"):
        poll(mailbox, store=failing_store, batch_size=2)
    # 1 and 2 were stored and flagged; 3 to 5 were fetched (3) or not, but none is \Seen.
    assert mailbox.last_uid == 2
    assert seen(imap_server) == {1: True, 2: True, 3: False, 4: False, 5: False}
    store = Recorder()
    poll(mailbox, store=store, batch_size=2)
    assert store.uids == [3, 4, 5]
    assert all(seen(imap_server).values())


def test_a_store_failure_mid_group_refetches_the_group(imap_server: DovecotServer) -> None:
    imap_server.append(support_request(n) for n in range(1, 4))
    mailbox, store = imap_server.mailbox(), Recorder()

    def store_then_fail(message: FetchedMessage) -> bool:
        stored = store(message)
        if message.uid == 2:
            raise RuntimeError("worker killed after the commit")
        return stored

    with pytest.raises(RuntimeError):
        poll(mailbox, store=store_then_fail, batch_size=10)
    assert (mailbox.last_uid, any(seen(imap_server).values())) == (0, False)
    result = poll(mailbox, store=store, batch_size=10)
    # 1 and 2 come again and are recognized; nothing is stored twice.
    assert (result.stored, result.duplicates) == (1, 2)
    assert len(store.message_ids) == 3
    assert all(seen(imap_server).values())


def test_a_new_uidvalidity_refetches_and_dedupes_by_message_id(
    imap_server: DovecotServer,
) -> None:
    imap_server.append(support_request(n) for n in range(1, 4))
    mailbox, store = imap_server.mailbox(), Recorder()
    first = poll(mailbox, store=store)
    assert not first.uidvalidity_changed
    imap_server.set_uidvalidity(first.uidvalidity + 1000)
    imap_server.append([support_request(4)])
    result = poll(mailbox, store=store)
    assert result.uidvalidity_changed
    assert mailbox.uidvalidity == first.uidvalidity + 1000
    assert (result.stored, result.duplicates) == (1, 3)
    assert all(m.uids_renumbered for m in store.messages[3:])
    assert mailbox.last_uid == 4
    assert poll(mailbox, store=store).uidvalidity_changed is False


def test_an_oversize_message_is_skipped_once_and_left_unread(imap_server: DovecotServer) -> None:
    big = support_request(2, padding=5000)
    imap_server.append([support_request(1), big, support_request(3)])
    mailbox, store = imap_server.mailbox(), Recorder()
    result = poll(mailbox, store=store, max_bytes=2000)
    assert store.uids == [1, 3]
    assert result.skipped == [SkippedMessage(uid=2, size=len(big))]
    assert mailbox.last_uid == 3
    flags = imap_server.flags()
    assert "\\Seen" not in flags[2]
    assert imap.SKIPPED_KEYWORD in flags[2]
    assert seen(imap_server) == {1: True, 2: False, 3: True}
    assert poll(mailbox, store=store, max_bytes=2000).skipped == []


def test_the_memory_budget_splits_a_batch(imap_server: DovecotServer) -> None:
    imap_server.append(support_request(n, padding=600) for n in range(1, 6))
    mailbox, store = imap_server.mailbox(), Recorder()
    # Each message is about 1 kB: a 2.5 kB budget means fetches of two messages.
    result = poll(mailbox, store=store, batch_size=5, max_bytes=2500)
    assert (result.stored, result.skipped, store.uids) == (5, [], [1, 2, 3, 4, 5])


def test_limit_stops_a_poll_and_the_next_one_continues(imap_server: DovecotServer) -> None:
    imap_server.append(support_request(n) for n in range(1, 6))
    mailbox, store = imap_server.mailbox(), Recorder()
    assert poll(mailbox, store=store, limit=2).more is True
    assert poll(mailbox, store=store, limit=2).more is True
    assert poll(mailbox, store=store, limit=2).more is False
    assert store.uids == [1, 2, 3, 4, 5]


@pytest.fixture(params=["MOVE", "COPY+EXPUNGE"])
def move_capability(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    if request.param == "COPY+EXPUNGE":
        # Pretend the server lacks MOVE (RFC 6851), as some still do.
        real_connect = imap.connect

        def connect_without_move(*args: object, **kwargs: object) -> imaplib.IMAP4:
            conn = real_connect(*args, **kwargs)  # type: ignore[arg-type]
            conn.capabilities = tuple(c for c in conn.capabilities if c != "MOVE")
            return conn

        monkeypatch.setattr(imap, "connect", connect_without_move)
    return str(request.param)


def test_handled_messages_move_to_the_configured_folder(
    imap_server: DovecotServer, move_capability: str
) -> None:
    imap_server.append(support_request(n) for n in range(1, 5))
    mailbox, store = imap_server.mailbox(move_to="Archive"), Recorder()
    result = poll(mailbox, store=store, batch_size=3)
    assert result.stored == 4
    assert imap_server.message_count() == 0
    assert list(seen(imap_server, "Archive").values()) == [True] * 4
    imap_server.append([support_request(5)])
    poll(mailbox, store=store)
    assert store.uids == [1, 2, 3, 4, 5]
    assert imap_server.message_count(folder="Archive") == 5


@pytest.fixture
def utf8_server() -> Iterator[DovecotServer]:
    with dovecot_server(users={"agent": "pässwörd"}) as server:
        yield server


def test_non_ascii_folder_and_password(utf8_server: DovecotServer) -> None:
    folder = "Entwürfe"
    with utf8_server.client("agent") as conn:
        assert conn.create(folder_argument(folder))[0] == "OK"
        raw = support_request(1)
        assert conn.append(folder_argument(folder), "", None, raw)[0] == "OK"
    mailbox = utf8_server.mailbox("agent", folder=folder, password="pässwörd")
    assert check(mailbox) == 1
    store = Recorder()
    poll(mailbox, store=store)
    assert store.uids == [1]


def test_check_counts_the_folders_messages(imap_server: DovecotServer) -> None:
    imap_server.append(support_request(n) for n in range(1, 4))
    assert check(imap_server.mailbox()) == 3
    assert all(not s for s in seen(imap_server).values())


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"password": "wrong-Pa55word"}, "login failed: [AUTHENTICATIONFAILED]"),
        ({"folder": "Nowhere"}, "cannot open folder 'Nowhere'"),
    ],
)
def test_errors_are_one_clean_line(
    imap_server: DovecotServer, fields: dict[str, str], message: str
) -> None:
    mailbox = imap_server.mailbox(**fields)
    for attempt in (lambda: check(mailbox), lambda: poll(mailbox, store=Recorder())):
        with pytest.raises(MailboxError) as caught:
            attempt()
        text = str(caught.value)
        assert message in text
        assert text.startswith(f"support@127.0.0.1:{imap_server.port}: ")
        assert "\n" not in text
        assert "Pa55word" not in text


def test_a_closed_port_is_one_clean_line(imap_server: DovecotServer) -> None:
    imap_server.stop()
    mailbox: Mailbox = imap_server.mailbox()
    with pytest.raises(MailboxError, match=r"cannot connect: .*refused") as caught:
        check(mailbox)
    assert "\n" not in str(caught.value)
    assert mailbox.password not in str(caught.value)


def test_uids_are_searched_in_windows_across_gaps(
    imap_server: DovecotServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(imap, "SEARCH_WINDOW", 2)
    imap_server.append(support_request(n) for n in range(1, 9))
    with imap_server.client() as conn:
        conn.select("INBOX")
        conn.uid("STORE", "3:4", "+FLAGS.SILENT", r"(\Deleted)")
        conn.expunge()
    mailbox, store = imap_server.mailbox(), Recorder()
    assert poll(mailbox, store=store, limit=4).more is True
    assert store.uids == [1, 2, 5, 6]
    assert poll(mailbox, store=store, limit=4).more is False
    assert store.uids == [1, 2, 5, 6, 7, 8]


def test_after_batch_sees_progress_and_can_stop_the_poll(imap_server: DovecotServer) -> None:
    imap_server.append(support_request(n) for n in range(1, 6))
    mailbox, progress = imap_server.mailbox(), []

    def lease_lost_after_two_batches(result: PollResult) -> None:
        progress.append(result.last_uid)
        if len(progress) == 2:
            raise LookupError("lease lost")

    with pytest.raises(LookupError):
        poll(mailbox, store=Recorder(), batch_size=2, after_batch=lease_lost_after_two_batches)
    assert progress == [2, 4]
    assert mailbox.last_uid == 4
    assert seen(imap_server) == {1: True, 2: True, 3: True, 4: True, 5: False}


def test_a_message_expunged_meanwhile_is_passed_over(imap_server: DovecotServer) -> None:
    imap_server.append(support_request(n) for n in range(1, 4))
    mailbox, store = imap_server.mailbox(), Recorder()

    def store_and_expunge_the_next(message: FetchedMessage) -> bool:
        if message.uid == 1:
            # Someone deletes message 2 after its size was read, before its body is.
            with imap_server.client() as other:
                other.select("INBOX")
                other.uid("STORE", "2", "+FLAGS.SILENT", r"(\Deleted)")
                other.expunge()
        return store(message)

    size = len(support_request(1))
    # A budget of one message: each body is fetched on its own.
    poll(mailbox, store=store_and_expunge_the_next, batch_size=10, max_bytes=size)
    assert store.uids == [1, 3]
    assert mailbox.last_uid == 3
    assert seen(imap_server) == {1: True, 3: True}


def test_a_message_the_server_did_not_return_is_not_passed_over(
    imap_server: DovecotServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    imap_server.append(support_request(n) for n in range(1, 4))
    mailbox, store = imap_server.mailbox(), Recorder()
    real_fetch_bodies = imap_protocol.fetch_bodies

    def lose_uid_2(data: list[object]) -> Iterator[tuple[int, bytes]]:
        return ((uid, raw) for uid, raw in real_fetch_bodies(data) if uid != 2)

    monkeypatch.setattr(imap_protocol, "fetch_bodies", lose_uid_2)
    with pytest.raises(MailboxError, match="no content for UID 2"):
        poll(mailbox, store=store, batch_size=10)
    assert mailbox.last_uid == 0
    assert seen(imap_server) == {1: False, 2: False, 3: False}


def test_check_reports_a_missing_move_to_folder(imap_server: DovecotServer) -> None:
    assert check(imap_server.mailbox(move_to="Archive")) == 0
    with pytest.raises(MailboxError, match="cannot open folder 'Processed'"):
        check(imap_server.mailbox(move_to="Processed"))
