"""The follow-up rules file: durations, defaults, and one-line errors that name the rule."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from crm_core.followups.rules import (
    CaseFirstResponseOverdue,
    LeadNoOutbound,
    RulesError,
    load_rules,
    parse_duration,
    parse_rules,
)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("30s", 30),
        ("15m", 900),
        ("48h", 172_800),
        ("7d", 604_800),
        ("2w", 1_209_600),
        ("1h30m", 5400),
        (" 1D ", 86_400),
        ("0s", 0),
        (45, 45),
        (0.5, 0.5),
    ],
)
def test_durations(text: object, seconds: float) -> None:
    assert parse_duration(text) == dt.timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["", "h", "48", "4 8h", "1.5h", "-3h", "3y", True, None, -1])
def test_bad_durations(text: object) -> None:
    with pytest.raises(ValueError, match=r"duration|negative"):
        parse_duration(text)


def test_the_shipped_defaults_load() -> None:
    rules = load_rules(None)
    kinds = [rule.kind for rule in rules.active]
    assert kinds == ["lead_no_outbound", "case_first_response_overdue", "opportunity_idle"]
    lead = rules.active[0]
    assert isinstance(lead, LeadNoOutbound)
    assert lead.after == dt.timedelta(hours=48)
    assert not lead.sends_email


def test_a_file_with_every_kind(tmp_path: Path) -> None:
    path = tmp_path / "rules.toml"
    path.write_text(
        """
[[rule]]
name = "quick-lead"
kind = "lead_no_outbound"
after = "30s"
owner = "sales@acme.test"
email_subject = "Hello {{ contact.first_name }}"
email_text = "Can we help?"

[[rule]]
name = "late-case"
kind = "case_first_response_overdue"
after = "1m"
notify = false

[[rule]]
name = "off"
kind = "opportunity_idle"
after = "1d"
enabled = false
"""
    )
    rules = load_rules(path)
    assert [r.name for r in rules.active] == ["quick-lead", "late-case"]
    lead, case = rules.active
    assert isinstance(lead, LeadNoOutbound)
    assert lead.sends_email
    assert lead.owner == "sales@acme.test"
    assert isinstance(case, CaseFirstResponseOverdue)
    assert case.notify is False


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('[[rule]]\nname = "x"\nkind = "lead_no_outbound"\nafter = "soon"',
         "rule 'x', field after: must be a duration"),
        ('[[rule]]\nname = "x"\nkind = "nap"\nafter = "1h"', "rule 'x'"),
        ('[[rule]]\nname = "x"\nkind = "opportunity_idle"',
         "rule 'x', field after: Field required"),
        ('[[rule]]\nname = "x"\nkind = "opportunity_idle"\nafter = "1h"\ncolour = "r"',
         "rule 'x', field colour: Extra inputs are not permitted"),
        ('[[rule]]\nname = "a"\nkind = "opportunity_idle"\nafter = "1h"\n'
         '[[rule]]\nname = "a"\nkind = "opportunity_idle"\nafter = "2h"',
         "two rules are named 'a'"),
        ('[[rule]]\nname = "x"\nkind = "lead_no_outbound"\nafter = "1h"\nemail_subject = "Hi"',
         "email_subject and email_text go together"),
        ('[[rule]]\nname = "x"\nkind = "lead_no_outbound"\nafter = "1h"\n'
         'email_subject = "{{ oops"\nemail_text = "t"', "template error"),
        ('[[rule]]\nkind = "opportunity_idle"\nafter = "1h"', "rule '#1', field name"),
        ("[[rule]\n", "not valid TOML"),
    ],
)  # fmt: skip
def test_bad_files_give_one_line_naming_the_rule(body: str, message: str) -> None:
    with pytest.raises(RulesError) as raised:
        parse_rules(body, origin="rules.toml")
    text = str(raised.value)
    assert message in text
    assert text.startswith("rules.toml: ")
    assert "\n" not in text


def test_a_missing_file_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(RulesError, match="cannot read"):
        load_rules(tmp_path / "nope.toml")
