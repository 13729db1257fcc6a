"""``crm people``: a person's data as one whole, exported (a subject access request) or erased."""

from __future__ import annotations

import json

import click
from sqlalchemy.orm import Session, sessionmaker

from crm_cli.people import operator
from crm_cli.session import session_factory, transaction
from crm_core.attachments.services import release_blobs, released_keys
from crm_core.blobs import BlobStore
from crm_core.blobs.configured import blob_store_from_settings
from crm_core.config import get_settings
from crm_core.errors import first_line
from crm_core.privacy.erasure import erase_person, reclaim_sqlite_space
from crm_core.privacy.export import export_person
from crm_core.privacy.subjects import SubjectNotFound


@click.group("people")
def people() -> None:
    """A person's data: export everything held about them, or erase it."""


def _one_of(email: str | None, contact_id: int | None) -> None:
    if (email is None) == (contact_id is None):
        raise click.UsageError("give either an EMAIL or --contact ID")


@people.command("export")
@click.argument("email", required=False)
@click.option("--contact", "contact_id", type=click.IntRange(1), help="The contact's id.")
def export(email: str | None, contact_id: int | None) -> None:
    """Print everything held about the person with EMAIL (or --contact ID) as JSON."""
    _one_of(email, contact_id)
    try:
        with transaction() as session:
            document = export_person(session, actor=operator(), email=email, contact_id=contact_id)
    except SubjectNotFound as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(json.dumps(document, indent=2, ensure_ascii=False))


def _release(sessions: sessionmaker[Session], store: BlobStore, keys: set[str]) -> int:
    """After the erasure committed: delete the files no row names any more; how many. Should
    this fail (or the process die first), ``crm attachments sweep`` removes them later."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        return len(release_blobs(sessions, store, keys))
    except (BotoCoreError, ClientError, OSError) as exc:
        click.echo(
            f"note: {len(keys)} files of theirs could not be deleted from {store.describe()}"
            f" ({first_line(str(exc))}); run `crm attachments sweep`",
            err=True,
        )
        return 0


@people.command("erase")
@click.argument("email", required=False)
@click.option("--contact", "contact_id", type=click.IntRange(1), help="The contact's id.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def erase(email: str | None, contact_id: int | None, yes: bool) -> None:
    """Erase the person with EMAIL (or --contact ID) everywhere; this cannot be undone."""
    _one_of(email, contact_id)
    if not yes:
        click.confirm(f"Erase {email or f'contact {contact_id}'} everywhere?", abort=True)
    settings = get_settings()
    secret_key = settings.resolved_secret_key()
    store = blob_store_from_settings(settings)
    try:
        with session_factory() as sessions:
            with sessions.begin() as session:
                report = erase_person(
                    session,
                    actor=operator(),
                    secret_key=secret_key,
                    email=email,
                    contact_id=contact_id,
                )
                keys = released_keys(session)
            released = _release(sessions, store, keys)
            engine = session.get_bind().engine
            compacted = report.already is None and reclaim_sqlite_space(engine)
    except SubjectNotFound as exc:
        raise click.ClickException(str(exc)) from None
    if report.already is not None:
        click.echo(f"contact {report.contact_id} was already erased on {report.already:%Y-%m-%d}")
        return
    for step, count in report.steps.items():
        click.echo(f"{step}\t{count}")
    click.echo(f"attachment_blobs\t{released}")
    click.echo(f"contact {report.contact_id} erased")
    if engine.dialect.name == "sqlite" and not compacted:
        click.echo(
            "note: the database was busy, so its file was not compacted; run VACUUM on it when"
            " it is idle (until then its free pages still hold the erased data)",
            err=True,
        )
