"""E-mail addresses out of headers: display names decoded, addr-specs normalized."""

from __future__ import annotations

import contextlib
import email.utils
from email import policy

from crm_core.mail.charsets import clean_text
from crm_core.mail.headers import decode_words

MAX_ADDRESS_CHARS = 254


def normalize_address(raw: str | None) -> str | None:
    """A lowercase addr-spec, or None when ``raw`` does not look like one."""
    if not raw:
        return None
    address = clean_text(raw).strip().strip("<>").strip().lower()
    local, at, domain = address.rpartition("@")
    if not at or not local or not domain or len(address) > MAX_ADDRESS_CHARS:
        return None
    if any(char.isspace() or char in "<>,;" for char in address):
        return None
    return address


def parse_address_list(raw: str | None) -> list[tuple[str | None, str]]:
    """Every ``(display name, address)`` in a header value; invalid entries are dropped."""
    if not raw:
        return []
    pairs = _stdlib_pairs(raw)
    result: list[tuple[str | None, str]] = []
    for name, addr in pairs:
        address = normalize_address(addr)
        if address is None:
            continue
        display = " ".join(clean_text(name).split()).strip('"').strip() or None
        result.append((display, address))
    return result


def parse_address(raw: str | None) -> tuple[str | None, str | None]:
    """The first ``(display name, address)`` in a header value; ``(None, None)`` if none."""
    pairs = parse_address_list(raw)
    return pairs[0] if pairs else (None, None)


def addresses_only(raw_values: list[str]) -> tuple[str, ...]:
    """The distinct addresses of several header values (a header may be repeated), in order."""
    seen: dict[str, None] = {}
    for raw in raw_values:
        for _, address in parse_address_list(raw):
            seen.setdefault(address)
    return tuple(seen)


def _stdlib_pairs(raw: str) -> list[tuple[str, str]]:
    # The RFC 5322 parser of policy.default decodes encoded-word names and
    # handles quoted commas; getaddresses is the forgiving fallback when it fails.
    with contextlib.suppress(Exception):  # the stdlib parser can fail on hostile input
        header = policy.default.header_factory("to", raw)
        return [(a.display_name, a.addr_spec) for a in header.addresses]
    try:
        pairs = email.utils.getaddresses([raw])
    except Exception:  # both recurse on nested comments: "((((…" is no address
        return []
    return [(decode_words(name), addr) for name, addr in pairs]
