from __future__ import annotations

import pytest

from crm_core.mail import normalize_address, parse_address, parse_address_list


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Alice@Example.COM", "alice@example.com"),
        ("  <bob@x.org> ", "bob@x.org"),
        ("no-at-sign", None),
        ("@example.com", None),
        ("user@", None),
        ("two words@example.com", None),
        ("", None),
        (None, None),
        ("a" * 250 + "@x.org", None),
    ],
)
def test_normalize_address(raw: str | None, expected: str | None) -> None:
    assert normalize_address(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Alice Smith <Alice@Example.com>", ("Alice Smith", "alice@example.com")),
        ('"Smith, Alice" <alice@example.com>', ("Smith, Alice", "alice@example.com")),
        ("=?utf-8?q?J=C3=BCrgen?= <j@example.de>", ("Jürgen", "j@example.de")),
        ("bare@example.com", (None, "bare@example.com")),
        ("bare@example.com (a comment)", (None, "bare@example.com")),
        ("Undisclosed recipients:;", (None, None)),
        ("<>", (None, None)),
        ("", (None, None)),
        (None, (None, None)),
    ],
)
def test_parse_address(raw: str | None, expected: tuple[str | None, str | None]) -> None:
    assert parse_address(raw) == expected


def test_parse_address_list_keeps_order_and_drops_invalid_entries() -> None:
    raw = 'a@x.org, "B, b" <B@x.org>,, broken@, <>, Team: c@x.org, d@x.org;'
    assert [address for _, address in parse_address_list(raw)] == [
        "a@x.org",
        "b@x.org",
        "c@x.org",
        "d@x.org",
    ]
