"""HTML bodies: sanitized for storage and display, and reduced to plain text.

Both steps are linear in the input: nh3 (ammonia/html5ever) parses the hostile
HTML, and the standard library's HTMLParser, which is quadratic on some broken
markup, only ever reads nh3's well-formed output. html5ever itself is quadratic
in the nesting depth of block elements, so absurdly deep HTML is not sanitized
at all: it is stored as text only.
"""

from __future__ import annotations

import html as html_entities
import re
from html.parser import HTMLParser

import nh3

from crm_core.mail.charsets import clean_text

MAX_NESTING = 400
_BLOCK_TAGS = frozenset({
    "address", "article", "aside", "blockquote", "br", "dd", "div", "dl", "dt", "footer", "h1",
    "h2", "h3", "h4", "h5", "h6", "header", "hr", "li", "ol", "p", "pre", "section", "table",
    "tbody", "thead", "tfoot", "tr", "ul",
})  # fmt: skip
_VOID_TAGS = frozenset({
    "area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param",
    "source", "track", "wbr",
})  # fmt: skip
# Tags removed together with their text: code, styling and the invisible head.
_DROPPED_WITH_CONTENT = {"script", "style", "head", "title", "template", "noscript"}
_TAG = re.compile(r"<(/?)([a-zA-Z][a-zA-Z0-9]*)")
_ANY_TAG = re.compile(r"<[^>]*>?")
_BLANK_LINES = re.compile(r"\n\s*\n+")


def nesting_depth(html: str) -> int:
    """An upper estimate of how deeply the elements of ``html`` nest, in one linear pass."""
    open_counts: dict[str, int] = {}
    depth = deepest = 0
    for match in _TAG.finditer(html):
        closing, tag = match.group(1), match.group(2).lower()
        if tag in _VOID_TAGS:
            continue
        if not closing:
            open_counts[tag] = open_counts.get(tag, 0) + 1
            depth += 1
            deepest = max(deepest, depth)
        elif open_counts.get(tag):
            # Only a tag that is open can close: stray end tags must not hide depth.
            open_counts[tag] -= 1
            depth -= 1
    return deepest


def sanitize_html(html: str) -> str | None:
    """HTML with scripts, handlers and dangerous URLs removed; None when nested absurdly deep."""
    text = clean_text(html)
    if nesting_depth(text) > MAX_NESTING:
        return None
    return nh3.clean(text, clean_content_tags=_DROPPED_WITH_CONTENT).strip()


def html_to_text(html: str) -> str:
    """The readable text of an HTML body: tags dropped, entities decoded, blocks on lines."""
    sanitized = sanitize_html(html)
    if sanitized is None:
        return stripped_text(html)
    return sanitized_to_text(sanitized)


def stripped_text(html: str) -> str:
    """Text by removing anything tag-like: the crude fallback for HTML too deep to parse."""
    text = html_entities.unescape(_ANY_TAG.sub(" ", clean_text(html)))
    return " ".join(clean_text(text).split())


class _TextCollector(HTMLParser):
    """Collects the visible text, with a line break at block boundaries."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.chunks: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _BLOCK_TAGS:
            self.chunks.append("\n")
        elif tag in ("td", "th"):
            self.chunks.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag in _BLOCK_TAGS:
            self.chunks.append("\n")

    def handle_data(self, data: str) -> None:
        self.chunks.append(data)


def sanitized_to_text(sanitized: str) -> str:
    """The text of HTML already sanitized by ``sanitize_html`` (well-formed, script-free)."""
    collector = _TextCollector()
    collector.feed(sanitized)
    collector.close()
    lines = "".join(collector.chunks).split("\n")
    text = "\n".join(" ".join(line.split()) for line in lines)
    return _BLANK_LINES.sub("\n\n", clean_text(text)).strip()
