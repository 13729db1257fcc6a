"""``crm erd``, ``crm config-docs``, ``crm notifications-docs``: the generated parts of the docs.

Each prints its Markdown, or with ``--write-into`` replaces the block between
its pair of markers in a page (docs/data-model.md, docs/configuration.md,
docs/notifications.md), so
the page's hand-written prose stays around a part that cannot go stale.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

ERD_START, ERD_END = "<!-- erd:start -->\n```mermaid\n", "```\n<!-- erd:end -->"
CONFIG_START, CONFIG_END = "<!-- config:start -->\n", "<!-- config:end -->"
EVENTS_START, EVENTS_END = "<!-- events:start -->\n", "<!-- events:end -->"

_write_into = click.option(
    "--write-into",
    type=click.Path(exists=True, dir_okay=False, writable=True, path_type=Path),
    help="Replace the generated block between this Markdown file's markers instead.",
)


def write_between_markers(path: Path, *, start: str, end: str, block: str) -> None:
    """Replace what lies between ``start`` and ``end`` in ``path`` with ``block``."""
    text = path.read_text(encoding="utf-8")
    begin, finish = text.find(start), text.find(end)
    if begin < 0 or finish < begin:
        first, last = start.splitlines()[0], end.splitlines()[-1]
        raise click.ClickException(f"{path}: no {first} ... {last} markers")
    path.write_text(text[: begin + len(start)] + block + text[finish:], encoding="utf-8")


@click.command()
@_write_into
def erd(write_into: Path | None) -> None:
    """Print the Mermaid ER diagram of the data model."""
    from crm_core.erd import render_mermaid
    from crm_core.models import metadata

    diagram = render_mermaid(metadata)
    if write_into is None:
        sys.stdout.write(diagram)
        return
    write_between_markers(write_into, start=ERD_START, end=ERD_END, block=diagram)
    click.echo(f"{write_into}: diagram updated")


@click.command("config-docs")
@_write_into
def config_docs(write_into: Path | None) -> None:
    """Print the reference of every CRM_* setting, generated from their descriptions."""
    from crm_core.config_docs import render_settings_reference

    reference = render_settings_reference()
    if write_into is None:
        sys.stdout.write(reference)
        return
    write_between_markers(write_into, start=CONFIG_START, end=CONFIG_END, block=reference)
    click.echo(f"{write_into}: configuration reference updated")


@click.command("notifications-docs")
@_write_into
def notifications_docs(write_into: Path | None) -> None:
    """Print each notification event type with the JSON Schema of its body."""
    from crm_core.notifications.events import render_event_reference

    reference = render_event_reference()
    if write_into is None:
        sys.stdout.write(reference)
        return
    write_between_markers(write_into, start=EVENTS_START, end=EVENTS_END, block=reference)
    click.echo(f"{write_into}: notification schemas updated")
