"""``crm campaigns``: create, list, show, send, schedule, pause, resume and cancel campaigns."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
from sqlalchemy.orm import Session

from crm_cli.session import operator, transaction
from crm_core.admin import campaigns as admin
from crm_core.campaigns import services
from crm_core.errors import InvalidInput, PermanentError


def _iso(value: str | None) -> dt.datetime | None:
    if value is None:
        return None
    try:
        instant = dt.datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not an ISO 8601 date-time") from None
    if instant.tzinfo is None:
        raise click.BadParameter("give a time zone, e.g. 2026-06-01T09:00:00+00:00")
    # Converted to UTC by the service, which also refuses a moment out of range.
    return instant


def _run(work: Callable[[Session], Any]) -> Any:
    """Run ``work`` in one transaction; service errors become one-line messages."""
    try:
        with transaction() as session:
            return work(session)
    except InvalidInput as exc:
        raise click.ClickException(f"invalid campaign: {exc}") from None
    except PermanentError as exc:
        raise click.ClickException(str(exc)) from None


def _show(view: services.CampaignView) -> None:
    click.echo(f"campaign {view.id} {view.code!r}: {view.name}")
    click.echo(f"status\t{view.status}")
    if view.send_at:
        click.echo(f"send at\t{view.send_at.isoformat()}")
    if view.schedule_cron:
        click.echo(f"cron\t{view.schedule_cron} (UTC; run {view.current_run})")
    if view.failure_reason:
        click.echo(f"failed\t{view.failure_reason}")
    click.echo("stats\t" + " ".join(f"{name}={count}" for name, count in view.stats.items()))


@click.group()
def campaigns() -> None:
    """Marketing campaigns: segments, templates, schedules and sends."""


@campaigns.command("create")
@click.option("--name", required=True)
@click.option("--code", required=True, help="The UTM campaign code.")
@click.option("--subject", required=True, help="Subject template (Jinja2).")
@click.option(
    "--text-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    required=True,
    help="Plain-text body template.",
)
@click.option(
    "--html-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="HTML body template.",
)
@click.option("--segment", default="{}", show_default=True, help="Segment JSON.")
@click.option("--send-at", help="ISO 8601 date-time with a zone; schedules the campaign.")
def create(
    name: str, code: str, subject: str, text_file: Path, html_file: Path | None,
    segment: str, send_at: str | None,
) -> None:  # fmt: skip
    """Create a campaign; prints its id."""
    try:
        segment_doc = json.loads(segment)
    except json.JSONDecodeError as exc:
        raise click.ClickException(f"--segment is not JSON: {exc}") from None
    when = _iso(send_at)
    campaign_id = _run(
        lambda s: (
            admin.create_campaign(
                s,
                actor=operator(),
                name=name,
                code=code,
                subject=subject,
                text=text_file.read_text(encoding="utf-8"),
                html=html_file.read_text(encoding="utf-8") if html_file else None,
                segment=segment_doc,
                send_at=when,
            ).id
        )
    )
    click.echo(f"campaign {campaign_id} created")


@campaigns.command("list")
def list_command() -> None:
    """Every campaign, newest first."""
    rows = _run(lambda s: [(c.id, c.status, c.code, c.name) for c in services.list_campaigns(s)])
    if not rows:
        click.echo("no campaigns")
    for row in rows:
        click.echo("\t".join(str(part) for part in row))


@campaigns.command("show")
@click.argument("campaign_id", type=int)
def show(campaign_id: int) -> None:
    """A campaign's status and stats."""
    _show(_run(lambda s: services.get_campaign_view(s, campaign_id=campaign_id)))


@campaigns.command("send")
@click.argument("campaign_id", type=int)
def send(campaign_id: int) -> None:
    """Send now (the dispatcher starts it within seconds); a no-op when already sending."""
    started = _run(lambda s: admin.send_now(s, actor=operator(), campaign_id=campaign_id))
    click.echo("campaign due now" if started else "campaign already sending or sent")


@campaigns.command("schedule")
@click.argument("campaign_id", type=int)
@click.option("--at", "send_at", help="ISO 8601 date-time with a zone (the first run with --cron).")
@click.option("--cron", help="Five-field cron expression in UTC: send on every match.")
def schedule(campaign_id: int, send_at: str | None, cron: str | None) -> None:
    """Send the campaign at a given time, or on every match of a cron expression."""
    if send_at is None and cron is None:
        raise click.UsageError("give --at, --cron or both")
    when = _iso(send_at)
    campaign = _run(
        lambda s: admin.schedule(
            s, actor=operator(), campaign_id=campaign_id, send_at=when, cron=cron
        )
    )
    first = campaign.send_at.isoformat()
    every = f", then on every match of {campaign.schedule_cron!r} (UTC)" if cron else ""
    click.echo(f"campaign {campaign_id} scheduled for {first}{every}")


def _simple(action: str, done: str) -> click.Command:
    @click.argument("campaign_id", type=int)
    def command(campaign_id: int) -> None:
        _run(lambda s: getattr(admin, action)(s, actor=operator(), campaign_id=campaign_id))
        click.echo(f"campaign {campaign_id} {done}")

    command.__doc__ = {
        "pause": "Stop claiming new batches (messages handed over are not recalled).",
        "resume": "Continue a paused campaign.",
        "cancel": "Stop for good; pending messages are never sent.",
    }[action]
    return campaigns.command(action)(command)


pause = _simple("pause", "paused")
resume = _simple("resume", "resumed")
cancel = _simple("cancel", "cancelled")
