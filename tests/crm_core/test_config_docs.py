"""The configuration page is generated from the Settings descriptions, and is current."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import Field

from crm_core.config import Settings
from crm_core.config_docs import render_settings_reference

CONFIGURATION_PAGE = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"
START, END = "<!-- config:start -->\n", "<!-- config:end -->"


def _section(reference: str, variable: str) -> str:
    start = reference.index(f"## `{variable}`\n")
    end = reference.find("\n## ", start + 1)
    return reference[start : end if end >= 0 else None]


def test_the_configuration_page_shows_the_current_settings() -> None:
    text = CONFIGURATION_PAGE.read_text(encoding="utf-8")
    assert START in text, "docs/configuration.md has no <!-- config:start --> marker"
    assert END in text, "docs/configuration.md has no <!-- config:end --> marker"
    block = text[text.index(START) + len(START) : text.index(END)]
    assert block == render_settings_reference(), (
        "docs/configuration.md is stale: run `make docs-config`"
    )


def test_every_setting_has_a_section_named_by_its_variable() -> None:
    reference = render_settings_reference()
    for name, field in Settings.model_fields.items():
        section = _section(reference, f"CRM_{name.upper()}")
        assert field.description in section


def test_a_section_gives_type_bounds_and_default() -> None:
    reference = render_settings_reference()
    assert "Type: integer; at least 1. Default: `5`." in _section(reference, "CRM_DB_POOL_SIZE")
    assert "Type: number; at least 0; at most 1000. Default: `50.0`." in _section(
        reference, "CRM_PUBLISH_LINGER_MS"
    )
    assert "Default: unset." in _section(reference, "CRM_DATABASE_URL")
    assert "Default: `false`." in _section(reference, "CRM_DB_PRE_PING")
    assert '`{"urgent": 1, "high": 4, "normal": 24, "low": 72}`' in _section(
        reference, "CRM_SLA_FIRST_RESPONSE_HOURS"
    )
    assert "Type: comma-separated list. Default: unset." in _section(
        reference, "CRM_SUPPORT_ADDRESSES"
    )


def test_a_multi_line_default_is_a_code_block() -> None:
    section = _section(render_settings_reference(), "CRM_AUTO_ACK_TEXT")
    assert "Default:\n\n```text\nHello{% if contact.first_name %}" in section


def test_a_setting_without_a_description_is_refused() -> None:
    class Undocumented(Settings):
        mystery: int = Field(default=1)

    with pytest.raises(ValueError, match="CRM_MYSTERY has no description"):
        render_settings_reference(Undocumented)
