"""Message-IDs as threading keys: one spelling per id, garbage rejected."""

from __future__ import annotations

import re

_BRACKETED = re.compile(r"<([^<>]*)>")
MAX_ID_CHARS = 995


def normalize_message_id(raw: str | None) -> str | None:
    """The id without angle brackets or whitespace; None when absent or not an id.

    An id must be printable ASCII with an ``@`` (RFC 5322 ``id-left "@" id-right``):
    a loose rule here would thread unrelated mail together on ids like ``1``.
    """
    if not raw:
        return None
    match = _BRACKETED.search(raw)
    candidate = match.group(1) if match else raw
    candidate = "".join(candidate.split())
    if not candidate or len(candidate) > MAX_ID_CHARS or not candidate.isascii():
        return None
    local, at, domain = candidate.rpartition("@")
    if not at or not local or not domain or not candidate.isprintable():
        return None
    if any(char in '<>",;()' for char in candidate):
        return None
    return candidate


def parse_message_id_list(raw: str | None) -> list[str]:
    """Every valid id in a References or In-Reply-To value, in order, without duplicates."""
    if not raw:
        return []
    tokens = _BRACKETED.findall(raw)
    if not tokens:
        # Some clients omit the brackets; their ids are the tokens with an "@".
        tokens = [token for token in re.split(r"[\s,]+", raw) if "@" in token]
    ids: dict[str, None] = {}
    for token in tokens:
        normalized = normalize_message_id(f"<{token}>")
        if normalized is not None:
            ids.setdefault(normalized)
    return list(ids)


def cap_references(ids: list[str], limit: int) -> list[str]:
    """At most ``limit`` ids: the thread's root (first) and the newest, as RFC 5322 advises."""
    if limit <= 0:
        return []
    if len(ids) <= limit:
        return ids
    if limit == 1:
        return ids[-1:]
    return [ids[0], *ids[len(ids) - limit + 1 :]]
