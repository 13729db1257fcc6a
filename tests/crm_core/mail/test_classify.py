from __future__ import annotations

import dataclasses

import pytest

from crm_core.mail import (
    CaseTokens,
    ParsedEmail,
    addressed_to_support,
    parse_case_token,
    parse_rfc822,
    read_case_token,
    thread_keys,
)

BASE = parse_rfc822(b"From: a@x.example\r\nTo: b@x.example\r\nMessage-ID: <self@x>\r\n\r\nhi\r\n")


def _with(**changes: object) -> ParsedEmail:
    return dataclasses.replace(BASE, **changes)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("subject", "expected"),
    [
        ("[Case #123]", 123),
        ("Re: Fwd: Printer on fire [Case #123]", 123),
        ("RE: [case #7] help", 7),
        ("[CASE#42]", 42),
        ("[ Case # 9 ]", 9),
        ("[Case 77] no hash", 77),
        ("Re: [Case #1] and [Case #2]", 1),
        ("Case #123 without brackets", None),
        ("[Case #abc]", None),
        ("[Case #]", None),
        ("[Case #1234567890123456789]", None),
        ("", None),
        (None, None),
    ],
)
def test_parse_case_token(subject: str | None, expected: int | None) -> None:
    assert parse_case_token(subject) == expected


TOKENS = CaseTokens.from_secret("s" * 32)


def test_case_token_reads_back_with_its_tag() -> None:
    token = TOKENS.token(4711)
    assert token == f"[Case #4711-{TOKENS.tag(4711)}]"
    assert parse_case_token(f"Re: Your request {token}") == 4711
    assert read_case_token(f"Re: {token.upper()}") == (4711, TOKENS.tag(4711))
    assert TOKENS.verifies(4711, TOKENS.tag(4711))


def test_a_tag_verifies_only_its_own_case_under_its_own_key() -> None:
    tag = TOKENS.tag(42)
    assert len(tag) == 8
    assert tag.isalnum()
    assert tag == tag.lower()
    assert not TOKENS.verifies(43, tag)
    assert not CaseTokens.from_secret("t" * 32).verifies(42, tag)
    assert not TOKENS.verifies(42, None)
    assert read_case_token("[Case #42]") == (42, None)


def test_the_key_is_not_shown() -> None:
    assert "s" * 32 not in repr(TOKENS)
    assert TOKENS.key.hex() not in repr(TOKENS)


def test_thread_keys_in_reply_to_first_then_references_newest_first() -> None:
    parsed = _with(in_reply_to=("parent@x",), references=("root@x", "mid@x", "parent@x"))
    assert thread_keys(parsed) == ["parent@x", "mid@x", "root@x"]


def test_thread_keys_never_include_the_message_itself() -> None:
    parsed = _with(in_reply_to=("self@x",), references=("root@x", "self@x"))
    assert thread_keys(parsed) == ["root@x"]


def test_thread_keys_are_empty_for_a_new_conversation() -> None:
    assert thread_keys(BASE) == []


@pytest.mark.parametrize(
    ("to", "cc", "expected"),
    [
        (("support@acme.test",), (), True),
        (("someone@else.test",), ("support@acme.test",), True),
        (("someone@else.test",), (), False),
        ((), (), False),
    ],
)
def test_addressed_to_support(to: tuple[str, ...], cc: tuple[str, ...], expected: bool) -> None:
    parsed = _with(to=to, cc=cc)
    assert addressed_to_support(parsed, {" Support@ACME.test "}) is expected


def test_no_support_addresses_means_nothing_is_addressed_to_support() -> None:
    assert addressed_to_support(_with(to=("support@acme.test",)), set()) is False
