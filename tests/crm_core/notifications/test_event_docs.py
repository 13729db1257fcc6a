"""docs/notifications.md shows the schemas generated from the event models, and is current."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from crm_cli.main import cli
from crm_core.notifications.events import EVENT_DATA, render_event_reference

NOTIFICATIONS_PAGE = Path(__file__).resolve().parents[3] / "docs" / "notifications.md"
START, END = "<!-- events:start -->\n", "<!-- events:end -->"


def test_the_notifications_page_shows_the_current_schemas() -> None:
    text = NOTIFICATIONS_PAGE.read_text(encoding="utf-8")
    assert START in text, "docs/notifications.md has no <!-- events:start --> marker"
    assert END in text, "docs/notifications.md has no <!-- events:end --> marker"
    block = text[text.index(START) + len(START) : text.index(END)]
    assert block == render_event_reference(), (
        "docs/notifications.md is stale: run `make docs-notifications`"
    )


def test_every_event_type_has_a_described_section() -> None:
    reference = render_event_reference()
    for event_type, model in EVENT_DATA.items():
        assert model.__doc__, f"{event_type} has no description"
        assert f"### `{event_type}`\n\n{model.__doc__.strip()}\n" in reference
        assert f'"urn:crm:notification:{event_type}"' in reference


def test_notifications_docs_rewrites_only_between_the_markers(tmp_path: Path) -> None:
    page = tmp_path / "notifications.md"
    page.write_text(f"# Notifications\n\n{START}old\n{END}\n\nAfter.\n")
    result = CliRunner().invoke(cli, ["notifications-docs", "--write-into", str(page)])
    assert result.exit_code == 0, result.output
    assert (
        page.read_text() == f"# Notifications\n\n{START}{render_event_reference()}{END}\n\nAfter.\n"
    )
