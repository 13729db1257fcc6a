"""The IMAP syntax the reader writes and reads itself."""

from __future__ import annotations

import pytest

from crm_core.mailboxes import imap_protocol as proto


@pytest.mark.parametrize(
    ("name", "encoded"),
    [
        ("INBOX", "INBOX"),
        ("Entwürfe", "Entw&APw-rfe"),
        ("~peter/mail/台北/日本語", "~peter/mail/&U,BTFw-/&ZeVnLIqe-"),  # RFC 3501 5.1.3
        ("Tom & Jerry", "Tom &- Jerry"),
    ],
)
def test_modified_utf7(name: str, encoded: str) -> None:
    assert proto.modified_utf7(name) == encoded


def test_folder_argument_is_quoted() -> None:
    assert proto.folder_argument('Say "hi"\\') == '"Say \\"hi\\"\\\\"'


@pytest.mark.parametrize(
    ("uids", "expected"),
    [([5], "5"), ([1, 2, 3], "1:3"), ([1, 2, 3, 7, 9, 10], "1:3,7,9:10"), ([4, 6], "4,6")],
)
def test_uid_set(uids: list[int], expected: str) -> None:
    assert proto.uid_set(uids) == expected


def test_search_drops_the_highest_uid_that_star_always_matches() -> None:
    # "UID SEARCH UID 11:*" on a folder whose highest UID is 10 answers "10".
    assert proto.search_uids([b"10"], above=10) == []
    assert proto.search_uids([b"12 11 13"], above=10) == [11, 12, 13]
    assert proto.search_uids([None], above=0) == []


def test_fetch_sizes() -> None:
    data = [b"1 (UID 4 RFC822.SIZE 120)", b"2 (RFC822.SIZE 99 UID 5)", b"3 (FLAGS (\\Seen))"]
    assert proto.fetch_sizes(data) == {4: 120, 5: 99}


def test_fetch_bodies_finds_the_uid_before_or_after_the_literal() -> None:
    data = [
        (b"1 (UID 4 BODY[] {5}", b"first"),
        b")",
        b"7 (FLAGS (\\Seen))",
        (b"2 (BODY[] {6}", b"second"),
        b" UID 5)",
    ]
    assert list(proto.fetch_bodies(data)) == [(4, b"first"), (5, b"second")]


def test_groups_stay_within_the_budget_with_at_least_one_message() -> None:
    sizes = {1: 40, 2: 40, 3: 30, 4: 500, 5: 10}
    groups = list(proto.groups_within([1, 2, 3, 4, 5], sizes, 100))
    assert groups == [[1, 2], [3], [4], [5]]
