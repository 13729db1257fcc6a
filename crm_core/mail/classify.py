"""Pure facts the threading step decides on: case tokens, support addressing, thread keys."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from crm_core.mail.parsed import ParsedEmail

# "[Case #42-7kq3ab2d]", "[case 42]", "[CASE#42]" anywhere in the subject ("Re: Fwd: … [Case #42]").
_CASE_TOKEN = re.compile(r"\[\s*case\s*#?\s*(\d{1,18})(?:-([a-z2-7]{8}))?\s*\]", re.IGNORECASE)
_TAG_BYTES = 5  # 40 bits, eight base32 characters


def read_case_token(subject: str | None) -> tuple[int, str | None] | None:
    """The case number and keyed tag (None when bare) of the first case token, or None."""
    if not subject:
        return None
    match = _CASE_TOKEN.search(subject)
    if match is None:
        return None
    tag = match.group(2)
    return int(match.group(1)), tag.lower() if tag else None


def without_case_tokens(subject: str) -> str:
    """The subject with every case token taken out and its spaces tidied."""
    return " ".join(_CASE_TOKEN.sub(" ", subject).split())


def parse_case_token(subject: str | None) -> int | None:
    """The case number of the first ``[Case #N]`` or ``[Case #N-tag]`` token, or None."""
    token = read_case_token(subject)
    return token[0] if token else None


@dataclass(frozen=True)
class CaseTokens:
    """Makes and checks the keyed tag of a case token, so a case number alone opens nothing.

    The tag is an HMAC of the case id under a key derived from ``CRM_SECRET_KEY``,
    truncated to 40 bits: only mail we sent about a case carries it.
    """

    key: bytes = field(repr=False)

    @classmethod
    def from_secret(cls, secret: str) -> CaseTokens:
        """Tokens keyed by a key derived from the secret (never the secret itself)."""
        key = hmac.new(secret.encode(), b"crm case token v1", hashlib.sha256).digest()
        return cls(key=key)

    def tag(self, case_id: int) -> str:
        """The eight-character lowercase base32 tag of ``case_id``."""
        digest = hmac.new(self.key, str(case_id).encode(), hashlib.sha256).digest()
        return base64.b32encode(digest[:_TAG_BYTES]).decode().lower()

    def token(self, case_id: int) -> str:
        """The subject token of mail about a case: ``[Case #42-7kq3ab2d]``."""
        return f"[Case #{case_id}-{self.tag(case_id)}]"

    def verifies(self, case_id: int, tag: str | None) -> bool:
        """Whether ``tag`` is the tag of ``case_id`` (constant time)."""
        return tag is not None and hmac.compare_digest(self.tag(case_id), tag.lower())


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
