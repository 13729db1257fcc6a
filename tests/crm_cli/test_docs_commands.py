"""crm erd and crm config-docs: print, or rewrite the block between a page's markers."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from crm_cli.main import cli
from crm_core.config_docs import render_settings_reference
from crm_core.erd import render_mermaid
from crm_core.models import metadata


def test_config_docs_prints_the_reference() -> None:
    result = CliRunner().invoke(cli, ["config-docs"])
    assert result.exit_code == 0, result.output
    assert result.output == render_settings_reference()


def test_config_docs_rewrites_only_between_the_markers(tmp_path: Path) -> None:
    page = tmp_path / "configuration.md"
    page.write_text("# Title\n\n<!-- config:start -->\nold\n<!-- config:end -->\n\nAfter.\n")
    result = CliRunner().invoke(cli, ["config-docs", "--write-into", str(page)])
    assert result.exit_code == 0, result.output
    expected = f"# Title\n\n<!-- config:start -->\n{render_settings_reference()}"
    assert page.read_text() == expected + "<!-- config:end -->\n\nAfter.\n"


def test_erd_rewrites_only_between_the_markers(tmp_path: Path) -> None:
    page = tmp_path / "data-model.md"
    page.write_text("Before.\n<!-- erd:start -->\n```mermaid\nold\n```\n<!-- erd:end -->\nAfter.\n")
    result = CliRunner().invoke(cli, ["erd", "--write-into", str(page)])
    assert result.exit_code == 0, result.output
    expected = f"Before.\n<!-- erd:start -->\n```mermaid\n{render_mermaid(metadata)}"
    assert page.read_text() == expected + "```\n<!-- erd:end -->\nAfter.\n"


def test_a_page_without_markers_is_a_one_line_error(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text("# No markers here\n")
    result = CliRunner().invoke(cli, ["config-docs", "--write-into", str(page)])
    assert result.exit_code == 1
    assert (
        result.output
        == f"Error: {page}: no <!-- config:start --> ... <!-- config:end --> markers\n"
    )
    assert page.read_text() == "# No markers here\n"
