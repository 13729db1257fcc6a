"""``crm suppressions``: see why an address gets no campaign mail, and undo it."""

from __future__ import annotations

import json
from typing import Any

import click

from crm_cli.session import operator, transaction
from crm_core.admin.suppressions import remove_suppression
from crm_core.base.pagination import MAX_LIMIT
from crm_core.bounces.suppression import get_suppression, list_suppressions
from crm_core.errors import InvalidInput


@click.group()
def suppressions() -> None:
    """The suppression list: addresses no campaign mails."""


def _line(view: dict[str, Any]) -> str:
    since = str(view["created_at"])[:19] + "Z"
    fields = [view["email"], view["reason"], since, view.get("provider") or "-"]
    if view.get("detail"):
        fields.append(" ".join(str(view["detail"]).split())[:120])
    return "\t".join(fields)


@suppressions.command("list")
@click.option("--limit", type=click.IntRange(1, MAX_LIMIT), default=50, show_default=True)
@click.option("--cursor", help="Where the previous page ended (printed after it).")
def list_command(limit: int, cursor: str | None) -> None:
    """Suppressed addresses, oldest first: address, reason, since when, the provider whose
    delivery report put it there (``-``: none did), detail."""
    with transaction() as session:
        try:
            page = list_suppressions(session, email=None, cursor=cursor, limit=limit)
        except InvalidInput as exc:
            raise click.ClickException(str(exc)) from None
    if not page.items:
        click.echo("no suppressions")
    for view in page.items:
        click.echo(_line(view))
    if page.next:
        click.echo(f"more: --cursor {page.next}")


@suppressions.command("show")
@click.argument("email")
def show(email: str) -> None:
    """One address: why it is suppressed, and its verified delivery failures (JSON)."""
    with transaction() as session:
        view = get_suppression(session, email=email)
    if view is None:
        raise click.ClickException(f"{email.strip()} is not suppressed")
    click.echo(json.dumps(view, indent=2, default=str))


@suppressions.command("remove")
@click.argument("email")
@click.option("--reason", required=True, help="Why the address may be mailed again (recorded).")
def remove(email: str, reason: str) -> None:
    """Take EMAIL off the list; the reason is kept as an Activity."""
    with transaction() as session:
        try:
            removed = remove_suppression(session, actor=operator(), email=email, reason=reason)
        except InvalidInput as exc:
            raise click.ClickException(str(exc)) from None
    if removed is None:
        raise click.ClickException(f"{email.strip()} is not suppressed")
    click.echo(f"{removed['email']} removed from the suppression list ({removed['reason']})")
