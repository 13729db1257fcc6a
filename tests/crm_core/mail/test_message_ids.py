from __future__ import annotations

import pytest

from crm_core.mail import normalize_message_id
from crm_core.mail.message_ids import cap_references, parse_message_id_list


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("<abc@host.example>", "abc@host.example"),
        ("  < abc@host.example >  ", "abc@host.example"),
        ("abc@host.example", "abc@host.example"),
        ("<abc@host.example> (comment)", "abc@host.example"),
        ("<a b\r\n c@host>", "abc@host"),
        ("(none)", None),
        ("<>", None),
        ("<no-at-sign>", None),
        ("<@host>", None),
        ("<abc@>", None),
        ("<café@host>", None),
        ("", None),
        (None, None),
        ("<" + "a" * 1000 + "@host>", None),
    ],
)
def test_normalize_message_id(raw: str | None, expected: str | None) -> None:
    assert normalize_message_id(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("<a@x> <b@x>\r\n <a@x> <c@x>", ["a@x", "b@x", "c@x"]),
        ("<a@x>,<b@x>", ["a@x", "b@x"]),
        ("a@x b@x", ["a@x", "b@x"]),
        ("<a@x> (Alice's message of Monday)", ["a@x"]),
        ("<garbage> <ok@x>", ["ok@x"]),
        ("", []),
        (None, []),
    ],
)
def test_parse_message_id_list(raw: str | None, expected: list[str]) -> None:
    assert parse_message_id_list(raw) == expected


@pytest.mark.parametrize(
    ("limit", "expected"),
    [
        (10, ["r0", "r1", "r2", "r3", "r4"]),
        (5, ["r0", "r1", "r2", "r3", "r4"]),
        (3, ["r0", "r3", "r4"]),
        (1, ["r4"]),
        (0, []),
    ],
)
def test_cap_references_keeps_the_root_and_the_newest(limit: int, expected: list[str]) -> None:
    assert cap_references([f"r{i}" for i in range(5)], limit) == expected
