"""``crm users``, ``crm api-keys``, ``crm audit``: who signs in, which keys exist, who did what.

Commands act as the operator (``operator:<login name>`` in the audit log), who has every
permission: whoever runs them already holds the database's credentials.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import click
from sqlalchemy.orm import Session

from crm_cli.session import operator, transaction
from crm_core.errors import InvalidInput
from crm_core.people import api_keys as keys
from crm_core.people import audit as audit_log
from crm_core.people import users as people
from crm_core.people.permissions import Actor, Role, Scope

_EXPECTED = (
    InvalidInput,
    people.UserExists,
    people.UserNotFound,
    keys.ApiKeyExists,
    keys.ApiKeyNotFound,
)


@contextmanager
def _work() -> Iterator[tuple[Session, Actor]]:
    """One transaction as the operator; expected failures become one-line messages."""
    try:
        with transaction() as session:
            yield session, operator()
    except _EXPECTED as exc:
        raise click.ClickException(str(exc)) from None


def _password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    value: str = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    return value


_ROLE = click.Choice([r.value for r in Role])
_stdin_option: Callable[[Any], Any] = click.option(
    "--password-stdin", is_flag=True, help="Read the password from the first line of stdin."
)


@click.group()
def users() -> None:
    """People who sign in, and their roles (viewer, agent, admin)."""


@users.command("add")
@click.argument("email")
@click.option("--role", type=_ROLE, required=True, help="What the user may do.")
@_stdin_option
def add_user(email: str, role: str, password_stdin: bool) -> None:
    """Add a user; the password is asked for (twice) unless given on stdin."""
    password = _password(password_stdin)
    with _work() as (session, actor):
        user = people.add_user(session, actor=actor, email=email, role=role, password=password)
        address = user.email
    click.echo(f"user {address!r} added as {role}")


@users.command("list")
def list_users() -> None:
    """Every user: address, role, state, last sign-in."""
    with _work() as (session, actor):
        rows = [
            (u.email, u.role, "disabled" if u.disabled_at else "active", u.last_login_at)
            for u in people.list_users(session, actor=actor)
        ]
    if not rows:
        click.echo("no users")
    for email, role, state, last in rows:
        click.echo(f"{email}\t{role}\t{state}\t{last.isoformat() if last else 'never signed in'}")


@users.command("set-role")
@click.argument("email")
@click.argument("role", type=_ROLE)
def set_role(email: str, role: str) -> None:
    """Give a user another role; their API keys follow it."""
    with _work() as (session, actor):
        user = people.set_role(session, actor=actor, email=email, role=role)
        address = user.email
    click.echo(f"user {address!r} is now {role}")


@users.command("disable")
@click.argument("email")
def disable(email: str) -> None:
    """Stop a user from signing in, and their API keys from working."""
    with _work() as (session, actor):
        user = people.disable_user(session, actor=actor, email=email)
        address = user.email
    click.echo(f"user {address!r} disabled")


@users.command("reset-password")
@click.argument("email")
@_stdin_option
def reset_password(email: str, password_stdin: bool) -> None:
    """Set a new password for a user."""
    password = _password(password_stdin)
    with _work() as (session, actor):
        user = people.reset_password(session, actor=actor, email=email, password=password)
        address = user.email
    click.echo(f"password of {address!r} changed")


@click.group("api-keys")
def api_keys() -> None:
    """Keys for the API, each with scopes: read, write, send, admin."""


@api_keys.command("create")
@click.argument("name")
@click.option(
    "--scope",
    "scopes",
    multiple=True,
    type=click.Choice([s.value for s in Scope]),
    help="A scope the key has; repeat for more. Default: read.",
)
@click.option(
    "--user", "user_email", help="The user the key acts for; it never exceeds their role."
)
def create_key(name: str, scopes: tuple[str, ...], user_email: str | None) -> None:
    """Create a key; it is printed once, alone on the last line, and stored only hashed."""
    with _work() as (session, actor):
        api_key, key = keys.create_api_key(
            session, actor=actor, name=name, scopes=scopes, user_email=user_email
        )
        granted = ", ".join(api_key.scopes)
    click.echo(f"API key {name!r} created with scopes {granted}; it is shown only now:")
    click.echo(key)


@api_keys.command("list")
def list_keys() -> None:
    """Every key: name, visible prefix, scopes, user, state."""
    with _work() as (session, actor):
        rows = [
            (
                k.name,
                k.prefix,
                ",".join(k.scopes),
                email or "-",
                "revoked" if k.revoked_at else "active",
            )
            for k, email in keys.list_api_keys(session, actor=actor)
        ]
    if not rows:
        click.echo("no API keys")
    for row in rows:
        name, prefix, scopes, user, state = row
        click.echo(f"{name}\t{prefix}…\t{scopes}\t{user}\t{state}")


@api_keys.command("revoke")
@click.argument("name")
def revoke_key(name: str) -> None:
    """Stop a key from working."""
    with _work() as (session, actor):
        keys.revoke_api_key(session, actor=actor, name=name)
    click.echo(f"API key {name!r} revoked")


def _since(_ctx: click.Context, _param: click.Parameter, value: str | None) -> dt.datetime | None:
    if value is None:
        return None
    try:
        moment = dt.datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter("must be ISO 8601, e.g. 2026-12-01T00:00:00+00:00") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


@click.command("audit")
@click.option("--entity", help="Only this kind of entity: customer, contact, user, api_key…")
@click.option("--id", "entity_id", type=click.IntRange(min=1), help="Only this entity's id.")
@click.option("--actor", "by", help="Only what this actor did, e.g. user:ann@example.com.")
@click.option("--since", callback=_since, help="Only from this time on (ISO 8601; UTC if no zone).")
@click.option("--limit", type=click.IntRange(1, 200), default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="One JSON document per line.")
def audit(
    entity: str | None,
    entity_id: int | None,
    by: str | None,
    since: dt.datetime | None,
    limit: int,
    as_json: bool,
) -> None:
    """Who changed what, newest first."""
    with _work() as (session, actor):
        page = audit_log.list_entries(
            session,
            actor=actor,
            entity=entity,
            entity_id=entity_id,
            by=by,
            since=since,
            limit=limit,
        )
    if not page.items:
        click.echo("no audit entries")
    for item in page.items:
        if as_json:
            click.echo(json.dumps(item, sort_keys=True))
            continue
        fields = ", ".join(
            f"{name}: {change['before']!r} -> {change['after']!r}"
            for name, change in item["changes"].items()
        )
        click.echo(
            f"{item['occurred_at']}\t{item['actor']}\t{item['action']}"
            f"\t{item['entity']} {item['entity_id']}\t{fields}"
        )
