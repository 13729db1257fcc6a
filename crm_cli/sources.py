"""``crm sources``: who may send webhooks."""

from __future__ import annotations

import datetime as dt

import click

from crm_cli.session import transaction
from crm_core.config import get_settings
from crm_core.ingestion import services


@click.group()
def sources() -> None:
    """Sending systems and their signing secrets."""


@sources.command("add")
@click.argument("name")
@click.option("--description", help="What this source is.")
@click.option("--rate-limit", type=click.IntRange(min=0), help="Requests per minute (0: none).")
def add_source(name: str, description: str | None, rate_limit: int | None) -> None:
    """Create a source; its signing secret is printed alone on the last line."""
    if not 1 <= len(name) <= 80 or "/" in name:
        raise click.ClickException("a source name is 1-80 characters without '/'")
    with transaction() as session:
        try:
            _, secret = services.create_source(
                session, name=name, description=description, rate_limit_per_minute=rate_limit
            )
        except services.SourceExists as exc:
            raise click.ClickException(str(exc)) from None
    click.echo(f"source {name!r} created; sign its requests with this secret:")
    click.echo(secret)


@sources.command("list")
def list_sources() -> None:
    """Every source, whether it is enabled, and its rate limit."""
    with transaction() as session:
        rows = [
            (s.name, "enabled" if s.enabled else "disabled", s.rate_limit_per_minute)
            for s in services.list_sources(session)
        ]
    if not rows:
        click.echo("no sources")
    for name, state, limit in rows:
        click.echo(f"{name}\t{state}\t{'default' if limit is None else limit}/min")


@sources.command("rotate")
@click.argument("name")
@click.option(
    "--grace-hours",
    type=click.FloatRange(min=0),
    help="How long the old secret keeps verifying (default: CRM_ROTATION_GRACE_HOURS).",
)
def rotate(name: str, grace_hours: float | None) -> None:
    """Issue a new secret, printed alone on the last line; the old one verifies for a while."""
    hours = get_settings().rotation_grace_hours if grace_hours is None else grace_hours
    with transaction() as session:
        try:
            secret = services.rotate_secret(session, name=name, grace=dt.timedelta(hours=hours))
        except services.SourceNotFound as exc:
            raise click.ClickException(str(exc)) from None
    click.echo(f"new secret for {name!r}; the previous one verifies for {hours:g} more hours:")
    click.echo(secret)


@sources.command("disable")
@click.argument("name")
def disable(name: str) -> None:
    """Refuse the source's requests (404) until it is enabled again."""
    _set_enabled(name, enabled=False)


@sources.command("enable")
@click.argument("name")
def enable(name: str) -> None:
    """Accept the source's requests again."""
    _set_enabled(name, enabled=True)


def _set_enabled(name: str, *, enabled: bool) -> None:
    with transaction() as session:
        try:
            services.set_source_enabled(session, name=name, enabled=enabled)
        except services.SourceNotFound as exc:
            raise click.ClickException(str(exc)) from None
    click.echo(f"source {name!r} {'enabled' if enabled else 'disabled'}")
