"""``crm mailboxes``: the IMAP folders read as support inboxes."""

from __future__ import annotations

import click

from crm_cli.session import transaction
from crm_core.config import get_settings
from crm_core.errors import InvalidInput
from crm_core.mailboxes import imap, services
from crm_core.mailboxes.services import MailboxView


@click.group()
def mailboxes() -> None:
    """IMAP mailboxes polled for inbound support mail."""


@mailboxes.command("add")
@click.argument("name")
@click.option(
    "--url",
    required=True,
    help="imap://USER:PASS@HOST:PORT/FOLDER (imaps:// for TLS, ?starttls=1 for STARTTLS).",
)
@click.option("--move-to", help="Folder handled messages are moved to (default: flag \\Seen).")
def add(name: str, url: str, move_to: str | None) -> None:
    """Poll a mailbox; its messages are stored under the source mailbox-NAME."""
    with transaction() as session:
        try:
            view = services.add_mailbox(session, name=name, url=url, move_to=move_to)
        except InvalidInput as exc:
            raise click.ClickException(str(exc)) from None
    click.echo(
        f"mailbox {view.name!r} added: {view.url} (source {services.source_name_of(view.name)})"
    )


def _line(view: MailboxView) -> str:
    state = "enabled" if view.enabled else "disabled"
    polled = f"{view.last_polled_at:%Y-%m-%d %H:%M:%S}Z" if view.last_polled_at else "never polled"
    fields = [view.name, view.url, state, f"last UID {view.last_uid}", polled]
    if view.move_to:
        fields.insert(2, f"moves to {view.move_to}")
    if view.last_error:
        fields.append(f"error: {view.last_error}")
    return "\t".join(fields)


@mailboxes.command("list")
def list_mailboxes() -> None:
    """Every mailbox: URL without its password, state, progress, last error."""
    with transaction() as session:
        lines = [_line(view) for view in services.list_mailboxes(session)]
    if not lines:
        click.echo("no mailboxes")
    for line in lines:
        click.echo(line)


@mailboxes.command("remove")
@click.argument("name")
def remove(name: str) -> None:
    """Stop polling a mailbox; the messages already stored stay, under its source."""
    with transaction() as session:
        if not services.remove_mailbox(session, name=name):
            raise click.ClickException(f"no mailbox {name!r}")
    click.echo(f"mailbox {name!r} removed")


@mailboxes.command("test")
@click.argument("name")
def check(name: str) -> None:
    """Connect, log in and open the folder: print its message count, or why not (status 1)."""
    with transaction() as session:
        mailbox = services.get_mailbox(session, name=name)
        if mailbox is None:
            raise click.ClickException(f"no mailbox {name!r}")
        session.expunge(mailbox)
    try:
        count = imap.check(mailbox, timeout=get_settings().imap_timeout_seconds)
    except imap.MailboxError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"mailbox {mailbox.name!r}: {count} messages in {mailbox.folder}")
