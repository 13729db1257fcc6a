"""``crm``: the command-line entry point."""

from __future__ import annotations

import click

from crm_cli.attachments import attachments
from crm_cli.campaigns import campaigns
from crm_cli.cases import cases
from crm_cli.contacts import contacts
from crm_cli.dev import dev
from crm_cli.docs import config_docs, erd, notifications_docs
from crm_cli.encryption import secrets_group
from crm_cli.events import events
from crm_cli.followups import followups, subscriptions
from crm_cli.mailboxes import mailboxes
from crm_cli.people import api_keys, audit, users
from crm_cli.personal_data import people
from crm_cli.sources import sources
from crm_cli.suppressions import suppressions
from crm_core.config import MissingSettingError, get_settings
from crm_core.encryption.types import KeyringMissing
from crm_core.errors import first_line
from crm_core.mail_transport.backends import InvalidMailUrlError
from crm_core.migrate import MigrationError


class CrmGroup(click.Group):
    """Turns expected failures into one-line messages instead of tracebacks."""

    def invoke(self, ctx: click.Context) -> object:
        from sqlalchemy.exc import OperationalError, StatementError

        try:
            return super().invoke(ctx)
        except OperationalError as exc:
            first = first_line(str(exc.orig or exc))
            raise click.ClickException(f"database error: {first}") from None
        except StatementError as exc:
            # A secret column could not be encrypted (no usable key): say why, and
            # never print the statement's parameters, which hold the plaintext.
            if isinstance(exc.orig, MissingSettingError | KeyringMissing):
                raise click.ClickException(str(exc.orig)) from None
            raise
        except (MissingSettingError, InvalidMailUrlError, MigrationError) as exc:
            raise click.ClickException(str(exc)) from None


@click.group(cls=CrmGroup)
@click.version_option(package_name="crm-platform")
def cli() -> None:
    """CRM integration platform: webhooks in, clean CRM data and timelines out."""


@cli.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
@click.option("--revision", default="head", show_default=True, help="Target revision.")
def db_upgrade(revision: str) -> None:
    """Apply migrations to CRM_DATABASE_URL (default: the SQLite file under ./var/)."""
    from crm_core import migrate

    settings = get_settings()
    if not settings.database_url:
        settings.ensure_var_dir()
    migrate.upgrade(settings.resolved_database_url(), revision=revision)
    click.echo(f"database at {revision}")


@cli.command()
def status() -> None:
    """Show whether the database answers, the workers seen recently, and the backlog."""
    import datetime as dt

    from crm_core.db import make_engine, make_session_factory
    from crm_core.ops.services import backlog, database_ready, live_workers

    settings = get_settings()
    engine = make_engine(settings.resolved_database_url())
    reason = database_ready(engine)
    if reason:
        raise click.ClickException(reason)
    window = dt.timedelta(seconds=3 * settings.heartbeat_seconds)
    with make_session_factory(engine)() as session:
        workers = live_workers(session, within=window)
        counts = backlog(session)
    engine.dispose()
    if not workers:
        click.echo(f"no worker seen in the last {window.total_seconds():.0f}s")
    for worker in workers:
        click.echo(f"{worker.hostname}\tpid {worker.pid}\tlast seen {worker.last_seen_at:%c}")
    for name, by_status in counts.items():
        listed = ", ".join(f"{n} {status}" for status, n in by_status.items()) or "none"
        click.echo(f"{name}: {listed}")


cli.add_command(dev)
cli.add_command(erd)
cli.add_command(config_docs)
cli.add_command(notifications_docs)
cli.add_command(sources)
cli.add_command(contacts)
cli.add_command(api_keys)
cli.add_command(users)
cli.add_command(audit)
cli.add_command(events)
cli.add_command(cases)
cli.add_command(mailboxes)
cli.add_command(campaigns)
cli.add_command(followups)
cli.add_command(subscriptions)
cli.add_command(secrets_group)
cli.add_command(suppressions)
cli.add_command(attachments)
cli.add_command(people)
