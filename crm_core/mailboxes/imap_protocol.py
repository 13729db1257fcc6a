"""The small pieces of IMAP syntax ``imaplib`` leaves to its caller (RFC 9051, RFC 3501)."""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable, Iterator, Sequence

UID_ITEM = re.compile(rb"\bUID (\d+)")
SIZE_ITEM = re.compile(rb"\bRFC822\.SIZE (\d+)")


def quoted(text: str) -> str:
    """``text`` as an IMAP quoted string (ASCII only; see ``folder_argument`` for names)."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def modified_utf7(name: str) -> str:
    """A mailbox name in IMAP's modified UTF-7 (RFC 3501 5.1.3): ``Entwürfe`` → ``Entw&APw-rfe``."""
    out: list[str] = []
    pending: list[str] = []

    def flush() -> None:
        if pending:
            encoded = base64.b64encode("".join(pending).encode("utf-16-be")).decode("ascii")
            out.append("&" + encoded.rstrip("=").replace("/", ",") + "-")
            pending.clear()

    for char in name:
        if 0x20 <= ord(char) <= 0x7E:
            flush()
            out.append("&-" if char == "&" else char)
        else:
            pending.append(char)
    flush()
    return "".join(out)


def folder_argument(name: str) -> str:
    """A folder name ready to send as a command argument: encoded and quoted."""
    return quoted(modified_utf7(name))


def uid_set(uids: Sequence[int]) -> str:
    """An ascending list of UIDs as a compact IMAP sequence set: ``1:3,7,9:10``."""
    ranges: list[str] = []
    start = previous = uids[0]
    for uid in [*uids[1:], None]:
        if uid is not None and uid == previous + 1:
            previous = uid
            continue
        ranges.append(str(start) if start == previous else f"{start}:{previous}")
        if uid is not None:
            start = previous = uid
    return ",".join(ranges)


def search_uids(data: Sequence[bytes | None], *, above: int) -> list[int]:
    """The UIDs of a ``UID SEARCH`` answer that are greater than ``above``, ascending.

    ``UID SEARCH UID n:*`` always matches the highest UID, even when it is
    below ``n`` (``*`` is the largest UID in use), hence the filter.
    """
    uids = {int(token) for line in data if line for token in line.split()}
    return sorted(uid for uid in uids if uid > above)


def fetch_sizes(data: Iterable[object]) -> dict[int, int]:
    """``{uid: RFC822.SIZE}`` from a ``UID FETCH … (UID RFC822.SIZE)`` answer."""
    sizes: dict[int, int] = {}
    for item in data:
        line = item[0] if isinstance(item, tuple) else item
        if not isinstance(line, bytes):
            continue
        uid, size = UID_ITEM.search(line), SIZE_ITEM.search(line)
        if uid and size:
            sizes[int(uid[1])] = int(size[1])
    return sizes


def fetch_bodies(data: Sequence[object]) -> Iterator[tuple[int, bytes]]:
    """``(uid, raw message)`` pairs from a ``UID FETCH … (UID BODY.PEEK[])`` answer.

    Each message comes as a ``(header, literal)`` tuple; the UID is in the header
    or, when the server sends it after the literal, in the bytes that follow.
    Untagged FETCH responses with only flags (other clients' changes) are ignored.
    """
    for index, item in enumerate(data):
        if not isinstance(item, tuple) or b"BODY[]" not in item[0]:
            continue
        header, literal = item
        match = UID_ITEM.search(header)
        if match is None and index + 1 < len(data):
            trailer = data[index + 1]
            match = UID_ITEM.search(trailer) if isinstance(trailer, bytes) else None
        if match is not None:
            yield int(match[1]), literal


def groups_within(uids: Sequence[int], sizes: dict[int, int], budget: int) -> Iterator[list[int]]:
    """Consecutive runs of ``uids`` whose sizes add up to at most ``budget`` (at least one each)."""
    group: list[int] = []
    total = 0
    for uid in uids:
        if group and total + sizes[uid] > budget:
            yield group
            group, total = [], 0
        group.append(uid)
        total += sizes[uid]
    if group:
        yield group
