"""Header values read defensively: raw, unfolded, decoded (RFC 2047), bounded in length."""

from __future__ import annotations

import contextlib
import datetime as dt
import email.utils
from email import policy
from email.message import Message

from crm_core.mail.charsets import clean_text

_FOLD = str.maketrans({"\r": "", "\n": ""})


class HeaderReader:
    """Reads a message's headers from their raw text, so a malformed header cannot raise.

    The standard library parses a header lazily when it is fetched, and some
    malformed values make that parsing fail; the raw values never do.
    """

    def __init__(self, message: Message, *, max_chars: int) -> None:
        self.max_chars = max_chars
        self.truncated: set[str] = set()
        self._values: dict[str, list[str]] = {}
        for name, value in message.raw_items():
            key = str(name).strip().lower()
            self._values.setdefault(key, []).append(self._unfold(key, value))

    def _unfold(self, key: str, value: object) -> str:
        text = clean_text(str(value).translate(_FOLD)).strip()
        if len(text) > self.max_chars:
            self.truncated.add(key)
            text = text[: self.max_chars]
        return text

    def __contains__(self, name: str) -> bool:
        return name.lower() in self._values

    @property
    def names(self) -> set[str]:
        return set(self._values)

    def first(self, name: str) -> str | None:
        """The raw value of the first occurrence (a duplicated header keeps its first)."""
        values = self._values.get(name.lower())
        return values[0] if values else None

    def all(self, name: str) -> list[str]:
        return list(self._values.get(name.lower(), []))

    def decoded(self, name: str) -> str | None:
        """The first value with RFC 2047 encoded words decoded."""
        value = self.first(name)
        return None if value is None else decode_words(value)


def decode_words(value: str) -> str:
    """Decode RFC 2047 encoded words (``=?utf-8?q?…?=``); a broken word is left as written."""
    # The stdlib's header parser has failure modes on hostile input: keep the raw text then.
    if "=?" in value:
        with contextlib.suppress(Exception):
            value = str(policy.default.header_factory("subject", value))
    return " ".join(clean_text(value).split())


def parse_date(value: str | None) -> dt.datetime | None:
    """An RFC 5322 date as an aware UTC datetime; None when absent or unparseable."""
    if not value:
        return None
    try:
        parsed = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if parsed is None:
        return None
    if parsed.tzinfo is None:
        # RFC 5322 "-0000": the time is UTC, the sender's zone unknown.
        parsed = parsed.replace(tzinfo=dt.UTC)
    try:
        return parsed.astimezone(dt.UTC)
    except (OverflowError, ValueError):
        return None
