"""Pure facts the threading step decides on: case tokens, support addressing, thread keys."""

from __future__ import annotations

import re
from collections.abc import Iterable

from crm_core.mail.model import ParsedEmail

# "[Case #123]", "[case 123]", "[CASE#123]" anywhere in the subject ("Re: Fwd: … [Case #123]").
_CASE_TOKEN = re.compile(r"\[\s*case\s*#?\s*(\d{1,18})\s*\]", re.IGNORECASE)


def parse_case_token(subject: str | None) -> int | None:
    """The case number of the first ``[Case #N]`` token in a subject, or None."""
    if not subject:
        return None
    match = _CASE_TOKEN.search(subject)
    return int(match.group(1)) if match else None


def case_token(case_id: int) -> str:
    """The token to put in the subject of mail about a case, read back by ``parse_case_token``."""
    return f"[Case #{case_id}]"


def addressed_to_support(parsed: ParsedEmail, support_addresses: Iterable[str]) -> bool:
    """Whether any To or Cc recipient is one of the support addresses (case-insensitive)."""
    wanted = {address.strip().lower() for address in support_addresses if address.strip()}
    return any(address in wanted for address in (*parsed.to, *parsed.cc))


def thread_keys(parsed: ParsedEmail) -> list[str]:
    """The Message-IDs to look up for threading: In-Reply-To first, then References newest first."""
    keys: dict[str, None] = {}
    for message_id in (*parsed.in_reply_to, *reversed(parsed.references)):
        if message_id != parsed.message_id:
            keys.setdefault(message_id)
    return list(keys)
