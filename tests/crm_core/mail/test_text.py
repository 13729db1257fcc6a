"""Charset decoding and HTML handling: the text the CRM stores and shows."""

from __future__ import annotations

import pytest

from crm_core.mail.charsets import clean_text, decode_bytes, known_codec
from crm_core.mail.html_text import (
    MAX_NESTING,
    html_to_text,
    nesting_depth,
    sanitize_html,
    stripped_text,
)


@pytest.mark.parametrize(
    ("data", "charset", "expected"),
    [
        ("café".encode(), "utf-8", "café"),
        ("café".encode("latin-1"), "utf-8", "café"),  # mislabeled Latin-1
        ("€ “q”".encode("cp1252"), "iso-8859-1", "€ “q”"),  # Latin-1 read as its superset
        ("café".encode(), "unknown-8bit", "café"),
        ("café".encode(), "x-unknown", "café"),
        ("café".encode(), None, "café"),
        (b"caf\xe9", "us-ascii", "café"),
        ("日本".encode("iso2022_jp"), "ISO-2022-JP", "日本"),
        ("Мир".encode("koi8-r"), '"KOI8-R"', "Мир"),
        (b"base64 is no charset", "base64", "base64 is no charset"),
        (b"nul\x00byte", "utf-8", "nulbyte"),
    ],
)
def test_decode_bytes(data: bytes, charset: str | None, expected: str) -> None:
    assert decode_bytes(data, charset) == expected


@pytest.mark.parametrize(
    ("label", "expected"),
    [("UTF-8", "utf-8"), ("x-unknown", None), ("", None), ("zlib", None), ("gb2312", "gb18030")],
)
def test_known_codec(label: str, expected: str | None) -> None:
    assert known_codec(label) == expected


def test_clean_text_recovers_escaped_bytes_and_drops_lone_surrogates() -> None:
    escaped = "caf\udcc3\udca9".encode("utf-8", "surrogateescape").decode(
        "utf-8", "surrogateescape"
    )
    assert clean_text(escaped) == "café"
    assert clean_text("a\ud800b\x07c\td") == "a\ufffdbc\td"


@pytest.mark.parametrize(
    ("html", "expected"),
    [
        ("<p>One</p><p>Two</p>", "One\n\nTwo"),
        ("a<br>b", "a\nb"),
        ("<ul><li>x</li><li>y</li></ul>", "x\n\ny"),
        ("Fish &amp; chips&nbsp;&euro;5", "Fish & chips €5"),
        ("<head><title>T</title></head><style>p{}</style><script>x()</script>Body", "Body"),
        ("<p>unclosed <b>tags", "unclosed tags"),
        ("<<<>>> <!-- comment --> text", "<<<>>> text"),
        ("", ""),
    ],
)
def test_html_to_text(html: str, expected: str) -> None:
    assert html_to_text(html) == expected


def test_sanitize_html_removes_scripts_handlers_and_dangerous_urls() -> None:
    dirty = (
        '<p onclick="x()">Hi<script>alert(1)</script>'
        '<img src="https://cdn.example/a.png" onerror="alert(2)">'
        '<a href="javascript:alert(3)">bad</a><a href="https://ok.example">ok</a></p>'
        "<iframe src=https://evil.example></iframe><style>*{}</style>"
    )
    clean = sanitize_html(dirty)
    for forbidden in ("script", "onclick", "onerror", "javascript:", "iframe", "style", "alert"):
        assert forbidden not in clean
    assert '<img src="https://cdn.example/a.png">' in clean
    assert 'href="https://ok.example"' in clean


@pytest.mark.parametrize(
    ("html", "expected"),
    [
        ("<p>a</p><p>b</p>", 1),
        ("<div><div><img><br>x</div></div>", 2),
        ("<div></b></b><div></i><div>", 3),  # stray end tags do not hide depth
        ("<DIV><Div>", 2),
        ("<div/><div/>", 2),  # self-closing syntax does not close a div in HTML
        ("no tags < 3", 0),
    ],
)
def test_nesting_depth(html: str, expected: int) -> None:
    assert nesting_depth(html) == expected


def test_absurdly_nested_html_is_not_sanitized_but_its_text_is_kept() -> None:
    deep = "<div>" * (MAX_NESTING + 1) + "deep &amp; text"
    assert sanitize_html(deep) is None
    assert html_to_text(deep) == "deep & text"
    assert html_to_text("<div>" * MAX_NESTING + "deep") == "deep"


def test_stripped_text_removes_anything_tag_like() -> None:
    assert stripped_text("<b>bold</b> <a href='x'>link</a> &lt;3 <unclosed") == "bold link <3"
