"""``crm mailboxes``: the IMAP folders read as support inboxes."""

from __future__ import annotations

import os
import sys
from urllib.parse import urlsplit

import click

from crm_cli.session import operator, transaction
from crm_core.admin import mailboxes as admin
from crm_core.config import get_settings
from crm_core.errors import InvalidInput
from crm_core.mailboxes import imap, services
from crm_core.mailboxes.services import MailboxView


@click.group()
def mailboxes() -> None:
    """IMAP mailboxes polled for inbound support mail."""


PASSWORD_VARIABLE = "CRM_MAILBOX_PASSWORD"  # noqa: S105 - the variable's name


@mailboxes.command("add")
@click.argument("name")
@click.option(
    "--url",
    required=True,
    help="imap://USER@HOST:PORT/FOLDER (imaps:// for TLS, ?starttls=1 for STARTTLS).",
)
@click.option(
    "--password-stdin",
    is_flag=True,
    help="Read the password from the first line of standard input.",
)
@click.option("--move-to", help="Folder handled messages are moved to (default: flag \\Seen).")
def add(name: str, url: str, password_stdin: bool, move_to: str | None) -> None:
    """Poll a mailbox; its messages are stored under the source mailbox-NAME.

    The password comes from standard input (--password-stdin), else from
    CRM_MAILBOX_PASSWORD, else from a prompt. USER:PASS@ in the URL works too,
    but a command line is visible to other users (ps) and kept in shell history.
    """
    try:
        password = _password(url, from_stdin=password_stdin)
        with transaction() as session:
            view = admin.add_mailbox(
                session, actor=operator(), name=name, url=url, move_to=move_to, password=password
            )
    except InvalidInput as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(
        f"mailbox {view.name!r} added: {view.url} (source {services.source_name_of(view.name)})"
    )
    if password is None:
        click.echo(
            "warning: a password in --url is visible in ps and the shell history; prefer"
            f" the prompt, --password-stdin or {PASSWORD_VARIABLE}",
            err=True,
        )


def _password(url: str, *, from_stdin: bool) -> str | None:
    """The password from stdin, the environment or a prompt; None when the URL carries it."""
    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
        if not password:
            raise click.ClickException("--password-stdin: standard input held no password")
        return password
    if PASSWORD_VARIABLE in os.environ:
        return os.environ[PASSWORD_VARIABLE]
    try:
        in_url = urlsplit(url.strip()).password is not None
    except ValueError:
        in_url = False
    if in_url:
        return None
    # A wrong URL is reported before anyone types a password for it.
    services.parse_mailbox_url(url, password="")
    return str(click.prompt("Password", hide_input=True, err=True))


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
        if not admin.remove_mailbox(session, actor=operator(), name=name):
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
