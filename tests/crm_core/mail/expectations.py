"""Checks a ParsedEmail against one row of a fixture table (expected.json)."""

from __future__ import annotations

from typing import Any

from crm_core.mail import ParsedEmail, addressed_to_support, thread_keys

SUPPORT_ADDRESSES = {"support@acme.test", "help@acme.test"}
PLAIN_FIELDS = {
    "from_address",
    "from_name",
    "subject",
    "message_id",
    "case_token",
    "auto_generated",
    "html",
    "attachments_skipped",
}
LIST_FIELDS = {"to", "cc", "reply_to", "in_reply_to", "references"}


def _check_one(parsed: ParsedEmail, key: str, want: Any) -> None:
    if key in PLAIN_FIELDS:
        assert getattr(parsed, key) == want, key
    elif key in LIST_FIELDS:
        assert list(getattr(parsed, key)) == want, key
    elif key == "date":
        assert (parsed.date.isoformat() if parsed.date else None) == want
    elif key == "text_contains":
        for fragment in want:
            assert fragment in parsed.text, fragment
    elif key == "text_not_contains":
        for fragment in want:
            assert fragment not in parsed.text, fragment
    elif key == "html_contains":
        for fragment in want:
            assert fragment in (parsed.html or ""), fragment
    elif key == "html_not_contains":
        for fragment in want:
            assert fragment.lower() not in (parsed.html or "").lower(), fragment
    elif key == "headers":
        assert {name: parsed.headers.get(name) for name in want} == want
    elif key == "auto_reason_contains":
        assert want in (parsed.auto_reason or "")
    else:
        _check_derived(parsed, key, want)


def _check_derived(parsed: ParsedEmail, key: str, want: Any) -> None:
    bounce = parsed.bounce
    if key == "bounce":
        assert (list(bounce.addresses) if bounce else None) == want
    elif key == "bounce_status":
        assert bounce is not None
        assert [r.status for r in bounce.recipients] == want
    elif key == "bounce_original_message_id":
        assert bounce is not None
        assert bounce.original_message_id == want
    elif key == "bounce_reporting_mta":
        assert bounce is not None
        assert bounce.reporting_mta == want
    elif key == "attachments":
        assert len(parsed.attachments) == len(want)
        for attachment, expected in zip(parsed.attachments, want, strict=True):
            actual = {name: getattr(attachment, name) for name in expected}
            assert actual == expected, attachment
            assert len(attachment.sha256) == 64
    elif key == "thread_keys":
        assert thread_keys(parsed) == want
    elif key == "addressed_to_support":
        assert addressed_to_support(parsed, SUPPORT_ADDRESSES) is want
    elif key == "defects_contain":
        for defect in want:
            assert defect in parsed.defects, (defect, parsed.defects)
    elif key == "references_count":
        assert len(parsed.references) == want
    elif key == "references_first":
        assert parsed.references[0] == want
    elif key == "references_last":
        assert parsed.references[-1] == want
    elif key == "subject_max_length":
        assert 0 < len(parsed.subject) <= want
    elif key != "limits":
        raise AssertionError(f"unknown expectation {key!r}: fix the fixture table")


def check_expected(parsed: ParsedEmail, expected: dict[str, Any]) -> None:
    """Assert every fact the table row states."""
    for key, want in expected.items():
        _check_one(parsed, key, want)
