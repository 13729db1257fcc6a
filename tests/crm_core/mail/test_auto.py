from __future__ import annotations

import pytest

from crm_core.mail.auto import auto_generated_reason, pick_signal_headers


@pytest.mark.parametrize(
    ("headers", "from_address", "expected"),
    [
        ({}, "alice@example.com", None),
        ({"Auto-Submitted": "no"}, "alice@example.com", None),
        ({"Auto-Submitted": "No ; comment"}, "alice@example.com", None),
        ({"Auto-Submitted": "auto-replied"}, None, "Auto-Submitted: auto-replied"),
        ({"Auto-Submitted": "Auto-Generated"}, None, "Auto-Submitted: auto-generated"),
        ({"Precedence": "bulk"}, None, "Precedence: bulk"),
        ({"Precedence": "JUNK"}, None, "Precedence: junk"),
        ({"Precedence": "list"}, None, "Precedence: list"),
        ({"Precedence": "auto_reply"}, None, "Precedence: auto_reply"),
        ({"Precedence": "first-class"}, "alice@example.com", None),
        ({"X-Precedence": "bulk"}, None, "X-Precedence: bulk"),
        ({"X-Autoreply": "yes"}, None, "X-Autoreply present"),
        ({"X-Autorespond": "Out of office"}, None, "X-Autorespond present"),
        ({"X-Autoreply": "no"}, "alice@example.com", None),
        ({"X-Auto-Response-Suppress": "All"}, None, "X-Auto-Response-Suppress: All"),
        ({"X-Auto-Response-Suppress": "DR, OOF"}, None, "X-Auto-Response-Suppress: DR, OOF"),
        ({"X-Auto-Response-Suppress": "DR"}, "alice@example.com", None),
        ({"List-Id": "<dev.lists.example>"}, None, "List-Id present"),
        ({"List-Unsubscribe": "<mailto:x@y>"}, None, "List-Unsubscribe present"),
        ({"X-Loop": "support@acme.test"}, None, "X-Loop present"),
        ({"Return-Path": "<>"}, None, "null Return-Path"),
        ({"Return-Path": "<alice@example.com>"}, "alice@example.com", None),
        (
            {"X-MS-Exchange-Generated-Message-Source": "Mailbox Rules Agent"},
            None,
            "X-MS-Exchange-Generated-Message-Source present",
        ),
        ({}, "mailer-daemon@mx.example", "sent by mailer-daemon"),
        ({}, "postmaster@example.com", "sent by postmaster"),
        ({}, "postmaster-team@example.com", None),
    ],
)
def test_auto_generated_reason(
    headers: dict[str, str], from_address: str | None, expected: str | None
) -> None:
    assert auto_generated_reason(headers, from_address=from_address) == expected


def test_a_delivery_report_is_auto_generated_whatever_its_headers() -> None:
    reason = auto_generated_reason({}, from_address="alice@example.com", is_report=True)
    assert reason == "delivery-status report"


def test_pick_signal_headers_is_case_insensitive_and_spells_names_canonically() -> None:
    picked = pick_signal_headers({"auto-submitted": "auto-replied", "x-mailer": "Foo"})
    assert picked == {"Auto-Submitted": "auto-replied"}
