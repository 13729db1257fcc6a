"""HTML bodies: sanitized for storage and display, and reduced to plain text."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import nh3

from crm_core.mail.charsets import clean_text

_BLOCK_TAGS = frozenset(
    [
        "address",
        "article",
        "aside",
        "blockquote",
        "br",
        "dd",
        "div",
        "dl",
        "dt",
        "footer",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "header",
        "hr",
        "li",
        "ol",
        "p",
        "pre",
        "section",
        "table",
        "tbody",
        "thead",
        "tfoot",
        "tr",
        "ul",
    ]
)
_SKIPPED_TAGS = frozenset({"script", "style", "head", "title", "template", "noscript"})
# Tags removed together with their text: code, styling and the invisible head.
_DROPPED_WITH_CONTENT = {"script", "style", "head", "title", "template", "noscript"}
_BLANK_LINES = re.compile(r"\n\s*\n+")


def sanitize_html(html: str) -> str:
    """HTML with scripts, event handlers and dangerous URLs removed (nh3/ammonia defaults)."""
    return nh3.clean(clean_text(html), clean_content_tags=_DROPPED_WITH_CONTENT)


class _TextCollector(HTMLParser):
    """Collects the visible text, with a line break at block boundaries."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.chunks: list[str] = []
        self.skipping = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIPPED_TAGS:
            self.skipping += 1
        elif tag in _BLOCK_TAGS:
            self.chunks.append("\n")
        elif tag in ("td", "th"):
            self.chunks.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIPPED_TAGS:
            self.skipping = max(0, self.skipping - 1)
        elif tag in _BLOCK_TAGS:
            self.chunks.append("\n")

    def handle_data(self, data: str) -> None:
        if not self.skipping:
            self.chunks.append(data)


def html_to_text(html: str) -> str:
    """The readable text of an HTML body: tags dropped, entities decoded, blocks on lines."""
    collector = _TextCollector()
    try:
        collector.feed(clean_text(html))
        collector.close()
    except (AssertionError, ValueError):
        # HTMLParser gives up on some broken markup; keep what it collected so far.
        pass
    lines = ("".join(collector.chunks)).split("\n")
    text = "\n".join(" ".join(line.split()) for line in lines)
    return _BLANK_LINES.sub("\n\n", text).strip()
