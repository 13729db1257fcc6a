"""Every literal e-mail fixture parses to the facts its table row states."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from crm_core.mail import MailLimits, parse_json, parse_rfc822
from crm_core.payloads.schemas import EmailPayload
from tests.crm_core.mail.expectations import check_expected

FIXTURES = Path(__file__).parents[2] / "fixtures" / "emails"
EXPECTED = json.loads((FIXTURES / "expected.json").read_text(encoding="utf-8"))
JSON_EXPECTED = json.loads((FIXTURES / "json" / "expected.json").read_text(encoding="utf-8"))


def test_every_fixture_has_a_table_row_and_every_row_a_fixture() -> None:
    assert sorted(EXPECTED) == sorted(path.name for path in FIXTURES.glob("*.eml"))
    assert len(EXPECTED) >= 20
    assert sorted(JSON_EXPECTED) == sorted(
        path.name for path in (FIXTURES / "json").glob("*.json") if path.name != "expected.json"
    )


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_rfc822_fixture(name: str) -> None:
    parsed = parse_rfc822((FIXTURES / name).read_bytes(), limits=MailLimits())
    check_expected(parsed, EXPECTED[name])


@pytest.mark.parametrize("name", sorted(JSON_EXPECTED))
def test_json_fixture(name: str) -> None:
    expected = JSON_EXPECTED[name]
    payload = EmailPayload.model_validate_json((FIXTURES / "json" / name).read_bytes())
    parsed = parse_json(payload, limits=MailLimits(**expected.get("limits", {})))
    check_expected(parsed, expected)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_parsed_text_is_storable(name: str) -> None:
    """No escaped raw bytes or NULs reach the fields the database will store."""
    parsed = parse_rfc822((FIXTURES / name).read_bytes())
    for value in (parsed.subject, parsed.text, parsed.html or "", parsed.from_name or ""):
        value.encode("utf-8")
        assert "\x00" not in value
    json.dumps(parsed.to_json_dict())
