"""Read a mailbox over IMAP without losing or repeating a message (standard ``imaplib``).

``poll`` hands each new message to a ``store`` callback, which stores it durably
(it commits) and dedupes it; only after ``store`` returns is the message flagged
``\\Seen`` (or moved), and only after that does the mailbox's ``last_uid`` move
past it. So a crash or a dropped connection anywhere leaves, at worst, messages
that were stored but not yet flagged: the next poll fetches them again and the
store's dedupe (source + Message-ID, or UIDVALIDITY + UID) makes that a no-op.

Messages larger than ``max_bytes`` (by ``RFC822.SIZE``, before any download) are
not fetched: they stay unread in the folder for a person to deal with, get the
keyword ``$CrmSkipped`` where the server allows keywords, are listed in the
result, and ``last_uid`` moves past them so that they are not considered again
(until a UIDVALIDITY change, when they are sized and skipped again).
"""

from __future__ import annotations

import imaplib
import ssl
from collections.abc import Callable, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Any

from crm_core.errors import first_line
from crm_core.mailboxes import imap_protocol as proto
from crm_core.mailboxes.models import Mailbox, MailboxSecurity

SKIPPED_KEYWORD = "$CrmSkipped"
DEFAULT_TIMEOUT = 60.0
SEARCH_WINDOW = 50_000


class MailboxError(Exception):
    """The mailbox could not be reached or read; ``str()`` is one line, free of secrets."""


@dataclass(frozen=True)
class FetchedMessage:
    """One message as fetched: where it was (UIDVALIDITY, UID) and its bytes, unparsed."""

    uid: int
    uidvalidity: int
    raw: bytes = field(repr=False)
    # True after a UIDVALIDITY change: UIDs read before it mean nothing now, so
    # duplicates can only be recognized by Message-ID.
    uids_renumbered: bool = False


@dataclass(frozen=True)
class SkippedMessage:
    """A message left on the server because it is larger than the size cap."""

    uid: int
    size: int


@dataclass
class PollResult:
    """What one poll did."""

    uidvalidity: int
    uidvalidity_changed: bool
    last_uid: int = 0
    stored: int = 0
    duplicates: int = 0
    skipped: list[SkippedMessage] = field(default_factory=list)
    # True when ``limit`` stopped the poll before the newest message.
    more: bool = False


# Stores one message durably (committing) and says whether it was new (False: a duplicate).
StoreMessage = Callable[[FetchedMessage], bool]


def _one_line(exc: BaseException, *, secret: str) -> str:
    args = exc.args[0] if len(exc.args) == 1 else exc
    text = args.decode("utf-8", "replace") if isinstance(args, bytes) else str(args)
    text = first_line(text)
    if secret:
        text = text.replace(secret, "***")
    return text or type(exc).__name__


def _failure(mailbox: Mailbox, what: str, exc: BaseException) -> MailboxError:
    reason = _one_line(exc, secret=mailbox.password)
    where = f"{mailbox.username}@{mailbox.host}:{mailbox.port}"
    return MailboxError(f"{where}: {what}: {reason}")


def _open(mailbox: Mailbox, timeout: float) -> imaplib.IMAP4:
    if mailbox.security == MailboxSecurity.TLS:
        context = ssl.create_default_context()
        return imaplib.IMAP4_SSL(mailbox.host, mailbox.port, ssl_context=context, timeout=timeout)
    conn = imaplib.IMAP4(mailbox.host, mailbox.port, timeout=timeout)
    if mailbox.security == MailboxSecurity.STARTTLS:
        try:
            conn.starttls(ssl_context=ssl.create_default_context())
        except BaseException:
            _close(conn)
            raise
    return conn


def _log_in(conn: imaplib.IMAP4, mailbox: Mailbox) -> None:
    if mailbox.username.isascii() and mailbox.password.isascii():
        conn.login(proto.quoted(mailbox.username), mailbox.password)
        return
    # LOGIN takes ASCII only; SASL PLAIN carries UTF-8 (RFC 4616).
    credentials = f"\0{mailbox.username}\0{mailbox.password}".encode()
    conn.authenticate("PLAIN", lambda _challenge: credentials)


def connect(mailbox: Mailbox, *, timeout: float = DEFAULT_TIMEOUT) -> imaplib.IMAP4:
    """A logged-in connection to the mailbox's server; ``MailboxError`` with the reason if not."""
    try:
        conn = _open(mailbox, timeout)
    except (OSError, ValueError, imaplib.IMAP4.error) as exc:
        # ValueError: a host name that is not a valid IDNA name, among others.
        raise _failure(mailbox, "cannot connect", exc) from None
    try:
        _log_in(conn, mailbox)
    except (OSError, imaplib.IMAP4.error) as exc:
        _close(conn)
        raise _failure(mailbox, "login failed", exc) from None
    try:
        # Servers announce MOVE, UIDPLUS… only once logged in; imaplib read them before.
        _, data = conn.capability()
        conn.capabilities = tuple(data[-1].decode("ascii", "replace").upper().split())
    except (OSError, imaplib.IMAP4.error) as exc:
        _close(conn)
        raise _failure(mailbox, "connection lost", exc) from None
    return conn


def _close(conn: imaplib.IMAP4) -> None:
    try:
        conn.logout()
    except (OSError, imaplib.IMAP4.error):
        # The connection is already gone; only the socket is left to release.
        with suppress(OSError):
            conn.shutdown()


def _ok(mailbox: Mailbox, what: str, answer: tuple[str, list[Any]]) -> list[Any]:
    status, data = answer
    if status != "OK":
        raise _failure(mailbox, what, imaplib.IMAP4.error(data[-1] if data else status))
    return data


@dataclass(frozen=True)
class _Folder:
    """What SELECT says about a folder."""

    count: int
    uidvalidity: int
    # The UID the next message will get; absent only on servers older than RFC 3501.
    uidnext: int | None


def _select(conn: imaplib.IMAP4, mailbox: Mailbox, *, readonly: bool) -> _Folder:
    data = _ok(
        mailbox,
        f"cannot open folder {mailbox.folder!r}",
        conn.select(proto.folder_argument(mailbox.folder), readonly=readonly),
    )
    _, validity = conn.response("UIDVALIDITY")
    _, uidnext = conn.response("UIDNEXT")
    if not validity or validity[0] is None:
        raise MailboxError(f"{mailbox.host}: folder {mailbox.folder!r} has no UIDVALIDITY")
    next_uid = int(uidnext[0]) if uidnext and uidnext[0] is not None else None
    return _Folder(int(data[0] or 0), int(validity[0]), next_uid)


def check(mailbox: Mailbox, *, timeout: float = DEFAULT_TIMEOUT) -> int:
    """Connect, log in, open the folder read-only (and see that ``move_to`` exists): its count."""
    conn = connect(mailbox, timeout=timeout)
    try:
        if mailbox.move_to:
            answer = conn.status(proto.folder_argument(mailbox.move_to), "(MESSAGES)")
            _ok(mailbox, f"cannot open folder {mailbox.move_to!r}", answer)
        return _select(conn, mailbox, readonly=True).count
    except (OSError, imaplib.IMAP4.error) as exc:
        raise _failure(mailbox, "connection lost", exc) from None
    finally:
        _close(conn)


@dataclass(frozen=True)
class _Limits:
    batch_size: int
    max_bytes: int
    limit: int | None


def poll(
    mailbox: Mailbox,
    *,
    store: StoreMessage,
    batch_size: int = 200,
    max_bytes: int = 25 * 1024 * 1024,
    limit: int | None = None,
    after_batch: Callable[[PollResult], None] | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> PollResult:
    """Hand every message newer than ``mailbox.last_uid`` to ``store``, then flag it handled.

    Updates ``mailbox.uidvalidity`` and ``mailbox.last_uid`` as it goes, so that
    after a return *or* an exception they say how far it safely got: save them
    (``services.record_poll``). At most ``batch_size`` messages per FETCH round
    and at most ``max_bytes`` of message bytes (or one message) in memory at a time;
    ``limit`` caps the messages of one poll. ``after_batch`` runs after each batch
    is flagged (to renew the lease and save progress; raising there stops the poll).
    IMAP failures raise ``MailboxError``; exceptions from ``store`` propagate,
    leaving that message for the next poll.
    """
    limits = _Limits(batch_size=batch_size, max_bytes=max_bytes, limit=limit)
    conn = connect(mailbox, timeout=timeout)
    try:
        return _poll_connected(conn, mailbox, store, limits, after_batch)
    except (OSError, imaplib.IMAP4.error) as exc:
        raise _failure(mailbox, "connection lost", exc) from None
    finally:
        _close(conn)


def _poll_connected(
    conn: imaplib.IMAP4,
    mailbox: Mailbox,
    store: StoreMessage,
    limits: _Limits,
    after_batch: Callable[[PollResult], None] | None,
) -> PollResult:
    folder = _select(conn, mailbox, readonly=False)
    changed = mailbox.uidvalidity is not None and mailbox.uidvalidity != folder.uidvalidity
    if mailbox.uidvalidity != folder.uidvalidity:
        # The old UIDs name nothing now: start again from the first message.
        mailbox.uidvalidity, mailbox.last_uid = folder.uidvalidity, 0
    result = PollResult(uidvalidity=folder.uidvalidity, uidvalidity_changed=changed)
    result.last_uid = mailbox.last_uid
    uids, result.more = _new_uids(conn, mailbox, folder.uidnext, limits.limit)
    reader = _BatchReader(conn, mailbox, store, result, limits.max_bytes)
    for start in range(0, len(uids), limits.batch_size):
        reader.handle(uids[start : start + limits.batch_size])
        result.last_uid = mailbox.last_uid
        if after_batch is not None:
            after_batch(result)
    return result


def _new_uids(
    conn: imaplib.IMAP4, mailbox: Mailbox, uidnext: int | None, limit: int | None
) -> tuple[list[int], bool]:
    """The UIDs above ``last_uid``, ascending, at most ``limit``; and whether more remain.

    Searched in windows of SEARCH_WINDOW UIDs, so that no answer outgrows the
    1 MB line ``imaplib`` accepts, however far behind the mailbox is.
    """
    found: list[int] = []
    low = mailbox.last_uid + 1
    while uidnext is None or low < uidnext:
        high = "*" if uidnext is None else str(min(low + SEARCH_WINDOW, uidnext) - 1)
        answer = conn.uid("SEARCH", "UID", f"{low}:{high}")
        found += proto.search_uids(_ok(mailbox, "search failed", answer), above=low - 1)
        if limit is not None and len(found) > limit:
            return found[:limit], True
        if uidnext is None:
            break
        low += SEARCH_WINDOW
    return found, False


@dataclass
class _BatchReader:
    """Fetches, stores and flags one batch of UIDs at a time."""

    conn: imaplib.IMAP4
    mailbox: Mailbox
    store: StoreMessage
    result: PollResult
    max_bytes: int

    def handle(self, batch: Sequence[int]) -> None:
        answer = self.conn.uid("FETCH", proto.uid_set(batch), "(UID RFC822.SIZE)")
        # A UID without a size was expunged meanwhile: there is nothing to read.
        sizes = proto.fetch_sizes(_ok(self.mailbox, "fetch failed", answer))
        oversize = [uid for uid in batch if sizes.get(uid, 0) > self.max_bytes]
        if oversize:
            self._mark_skipped(oversize, sizes)
        wanted = [uid for uid in batch if uid in sizes and sizes[uid] <= self.max_bytes]
        for group in proto.groups_within(wanted, sizes, self.max_bytes):
            fetched = self._store_group(group)
            self._check_gone([uid for uid in group if uid not in fetched])
            if fetched:
                self._mark_handled(fetched)
            self.mailbox.last_uid = group[-1]
        self.mailbox.last_uid = max(self.mailbox.last_uid, batch[-1])

    def _store_group(self, group: list[int]) -> list[int]:
        """Fetch and store the group's messages; the UIDs that were stored."""
        answer = self.conn.uid("FETCH", proto.uid_set(group), "(UID BODY.PEEK[])")
        data = _ok(self.mailbox, "fetch failed", answer)
        uidvalidity = self.result.uidvalidity
        renumbered = self.result.uidvalidity_changed
        stored: list[int] = []
        for uid, raw in proto.fetch_bodies(data):
            message = FetchedMessage(uid, uidvalidity, raw, uids_renumbered=renumbered)
            if self.store(message):
                self.result.stored += 1
            else:
                self.result.duplicates += 1
            stored.append(uid)
        return sorted(stored)

    def _check_gone(self, missing: list[int]) -> None:
        """Messages the FETCH did not return must have been expunged meanwhile.

        Were one of them still there, moving ``last_uid`` past it would lose it.
        """
        if not missing:
            return
        answer = self.conn.uid("SEARCH", "UID", proto.uid_set(missing))
        present = proto.search_uids(_ok(self.mailbox, "search failed", answer), above=0)
        still_there = sorted(set(present) & set(missing))
        if still_there:
            raise MailboxError(
                f"{self.mailbox.host}: the server returned no content for UID {still_there[0]}"
            )

    def _mark_handled(self, group: list[int]) -> None:
        uids = proto.uid_set(group)
        answer = self.conn.uid("STORE", uids, "+FLAGS.SILENT", r"(\Seen)")
        _ok(self.mailbox, "cannot flag messages \\Seen", answer)
        if self.mailbox.move_to:
            self._move(uids, self.mailbox.move_to)

    def _move(self, uids: str, folder: str) -> None:
        target = proto.folder_argument(folder)
        what = f"cannot move messages to {folder!r}"
        if "MOVE" in self.conn.capabilities:
            _ok(self.mailbox, what, self.conn.uid("MOVE", uids, target))
        else:
            # Without MOVE (RFC 6851): copy, then delete; a crash in between leaves a
            # copy in both folders, and the next poll's store sees a duplicate.
            _ok(self.mailbox, what, self.conn.uid("COPY", uids, target))
            answer = self.conn.uid("STORE", uids, "+FLAGS.SILENT", r"(\Deleted)")
            _ok(self.mailbox, what, answer)
            if "UIDPLUS" in self.conn.capabilities:
                _ok(self.mailbox, what, self.conn.uid("EXPUNGE", uids))
            else:
                _ok(self.mailbox, what, self.conn.expunge())
        # imaplib keeps every untagged EXPUNGE; drop them so a long poll stays small.
        self.conn.response("EXPUNGE")

    def _mark_skipped(self, oversize: list[int], sizes: dict[int, int]) -> None:
        # A keyword is a courtesy to people reading the folder; servers may refuse it.
        self.conn.uid("STORE", proto.uid_set(oversize), "+FLAGS.SILENT", f"({SKIPPED_KEYWORD})")
        self.result.skipped.extend(SkippedMessage(uid, sizes[uid]) for uid in oversize)
