"""Inbound e-mail: parse MIME or provider JSON into plain facts, and classify them.

Pure Python with no database: the e-mail pipeline threads, files and records
what this package reports.
"""

from crm_core.mail.addresses import normalize_address, parse_address, parse_address_list
from crm_core.mail.classify import (
    CaseTokens,
    addressed_to_support,
    parse_case_token,
    read_case_token,
    thread_keys,
    without_case_tokens,
)
from crm_core.mail.message_ids import normalize_message_id
from crm_core.mail.parse import parse_json, parse_rfc822
from crm_core.mail.parsed import (
    Attachment,
    Bounce,
    BouncedRecipient,
    MailLimits,
    MalformedEmail,
    ParsedEmail,
)

__all__ = [
    "Attachment",
    "Bounce",
    "BouncedRecipient",
    "CaseTokens",
    "MailLimits",
    "MalformedEmail",
    "ParsedEmail",
    "addressed_to_support",
    "normalize_address",
    "normalize_message_id",
    "parse_address",
    "parse_address_list",
    "parse_case_token",
    "parse_json",
    "parse_rfc822",
    "read_case_token",
    "thread_keys",
    "without_case_tokens",
]
