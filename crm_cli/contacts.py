"""``crm contacts import`` and ``crm contacts export``: contacts in and out of files.

An import runs in one transaction as the operator: it commits whole, or (a dry run,
an error) writes nothing. Its last line is the summary of what was, or would be,
created, matched and refused.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO

import click

from crm_cli.session import operator, session_factory, transaction
from crm_core.config import get_settings
from crm_core.contact_files.exporting import FORMATS, export_contacts
from crm_core.contact_files.importing import (
    ImportFileError,
    ImportReport,
    import_contacts,
    read_rows,
)
from crm_core.leads.normalize import free_mail_domains


@click.group()
def contacts() -> None:
    """Contacts in and out of files: CSV import, CSV or NDJSON export."""


@contacts.command("import")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--dry-run",
    is_flag=True,
    help="Report what would be created, matched or refused; write nothing.",
)
def import_command(file: Path, dry_run: bool) -> None:
    """Create or match a contact for each row of FILE (CSV with a header), as leads are.

    Columns: email, phone, first_name, last_name, full_name, company, job_title, country;
    attributes (a JSON object) or attributes.NAME; the export's id, customer_id, is_primary,
    tags, marketing_consent*, created_at and updated_at are skipped. Any other column refuses
    the file.
    """
    settings = get_settings()
    free_domains = free_mail_domains(settings.extra_freemail_domain_list())
    try:
        stream = file.open(encoding="utf-8-sig", newline="")
    except OSError as exc:
        raise click.ClickException(f"{file}: {exc.strerror or exc}") from None
    with stream, transaction() as session:
        try:
            rows = read_rows(stream)
            with _progress(_count_lines(file)) as advance:
                report = import_contacts(
                    session,
                    rows,
                    actor=operator(),
                    free_domains=free_domains,
                    default_region=settings.default_region,
                    dry_run=dry_run,
                    progress=advance,
                )
        except ImportFileError as exc:
            raise click.ClickException(f"{file}: {exc}") from None
    _print_report(report)


@contextmanager
def _progress(total: int) -> Iterator[Callable[[int], None]]:
    """A progress bar on a terminal's standard error (nothing elsewhere); yields ``advance``."""
    if not sys.stderr.isatty():
        yield lambda rows: None
        return
    with click.progressbar(length=total, label="importing", file=sys.stderr) as bar:
        done = 0

        def advance(rows: int) -> None:
            nonlocal done
            bar.update(max(0, rows - done))
            done = rows

        yield advance


def _count_lines(file: Path) -> int:
    """The rows to expect, for the progress bar (records spanning lines make it an estimate)."""
    with file.open("rb") as raw:
        return max(0, sum(1 for _ in raw) - 1)


def _print_report(report: ImportReport) -> None:
    shown = ("create", "match", "refuse") if report.dry_run else ("refuse",)
    for row in report.rows:
        if row.action in shown:
            click.echo(f"line {row.line}: {row.action}: {row.detail}")
    click.echo(("dry run, nothing written: " if report.dry_run else "") + report.summary)


@contacts.command("export")
@click.option(
    "--format",
    "format_",
    type=click.Choice(sorted(FORMATS)),
    default="csv",
    show_default=True,
    help="CSV with a header, or one JSON object a line.",
)
@click.option(
    "--output",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    help="Write to this file instead of standard output.",
)
def export_command(format_: str, output: Path | None) -> None:
    """Every contact, by id, streamed page by page."""
    with session_factory() as sessions:
        if output is None:
            _write(export_contacts(sessions, format=format_), sys.stdout)
            return
        try:
            out = output.open("w", encoding="utf-8", newline="")
        except OSError as exc:
            raise click.ClickException(f"{output}: {exc.strerror or exc}") from None
        with out:
            _write(export_contacts(sessions, format=format_), out)
    click.echo(f"{output}: contacts exported", err=True)


def _write(chunks: Iterable[str], out: TextIO) -> None:
    for chunk in chunks:
        out.write(chunk)
