"""``crm events``: list, inspect and replay inbox events."""

from __future__ import annotations

import datetime as dt
import json

import click
from sqlalchemy import select

from crm_cli.session import operator, session_factory, transaction
from crm_core.admin.events import replay_events
from crm_core.config import get_settings
from crm_core.db import utcnow
from crm_core.ingestion import retention
from crm_core.ingestion.models import EventStatus, InboxEvent, Source
from crm_core.ingestion.processing import (
    EventNotFound,
    NotReplayable,
    get_event,
    replayable_ids,
)
from crm_core.readapi.events import event_document

STATUSES = click.Choice([s.value for s in EventStatus])


@click.group()
def events() -> None:
    """Inbox events: what arrived, what became of it, and replays."""


@events.command("list")
@click.option("--status", type=STATUSES, help="Only events in this status.")
@click.option("--source", "source_name", help="Only events from this source.")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 10_000))
def list_events(status: str | None, source_name: str | None, limit: int) -> None:
    """The most recent events, newest first."""
    query = (
        select(InboxEvent, Source.name)
        .join(Source, Source.id == InboxEvent.source_id)
        .order_by(InboxEvent.id.desc())
        .limit(limit)
    )
    if status:
        query = query.where(InboxEvent.status == status)
    if source_name:
        query = query.where(Source.name == source_name)
    with transaction() as session:
        rows = session.execute(query).all()
        lines = [
            f"{e.id}\t{e.received_at:%Y-%m-%d %H:%M:%S}\t{name}\t{e.kind}\t{e.status}"
            f"\t{e.attempts}\t{(e.error or '')[:80]}"
            for e, name in rows
        ]
    click.echo("\n".join(lines) if lines else "no events")


@events.command("show")
@click.argument("event_id", type=int)
@click.option("--body", is_flag=True, help="Also print the stored body.")
def show(event_id: int, body: bool) -> None:
    """Everything known about one event, as JSON."""

    with transaction() as session:
        try:
            event = get_event(session, event_id=event_id)
        except EventNotFound as exc:
            raise click.ClickException(str(exc)) from None
        document = event_document(event, session.get(Source, event.source_id))
        document["content_type"] = event.content_type
        document["headers"] = event.headers
        if body:
            removed = retention.body_removed_message(event)
            if removed:
                raise click.ClickException(f"{removed}; its metadata is shown without --body")
            document["body"] = event.body.decode("utf-8", errors="replace")
    click.echo(json.dumps(document, indent=2, ensure_ascii=False))


@events.command("replay")
@click.argument("event_id", type=int, required=False)
@click.option(
    "--status",
    type=click.Choice(["invalid", "failed", "dead", "processed"]),
    help="Replay every event in this status instead of one.",
)
def replay(event_id: int | None, status: str | None) -> None:
    """Process an event again (or all of one status); handlers write nothing twice."""
    from workers.publish import enqueue_events

    if (event_id is None) == (status is None):
        raise click.ClickException("give either an EVENT_ID or --status")
    with transaction() as session:
        try:
            ids = [event_id] if event_id is not None else []
            if status is not None:
                ids = replayable_ids(session, status=EventStatus(status))
            replay_events(session, actor=operator(), event_ids=ids)
        except (EventNotFound, NotReplayable) as exc:
            raise click.ClickException(str(exc)) from None
    # Published after the commit; anything not published now, the sweeper publishes.
    published = enqueue_events(ids)
    click.echo(f"{len(ids)} event(s) queued for processing ({published} published now)")


@events.command("prune")
@click.option("--dry-run", is_flag=True, help="Say what would be dropped, and drop nothing.")
@click.option(
    "--older-than-days",
    type=click.IntRange(1),
    help="Override CRM_INBOX_RETENTION_DAYS for this run.",
)
def prune(dry_run: bool, older_than_days: int | None) -> None:
    """Drop the raw body of processed events past the retention; keep their metadata."""
    policy = retention.RetentionPolicy.from_settings(get_settings())
    days = older_than_days or policy.days
    if days <= 0:
        click.echo("CRM_INBOX_RETENTION_DAYS is 0: every body is kept, nothing to prune")
        return
    cutoff = utcnow() - dt.timedelta(days=days)
    with session_factory() as sessions:
        if dry_run:
            with sessions() as session:
                found = retention.prunable_summary(session, cutoff=cutoff)
            oldest = f", the oldest received {found.oldest:%Y-%m-%d}" if found.oldest else ""
            click.echo(
                f"would drop the body of {found.events} event(s) received before"
                f" {cutoff:%Y-%m-%d %H:%M} ({found.bytes} bytes{oldest})"
            )
            return
        dropped = 0
        while True:
            with sessions.begin() as session:
                done = retention.prune_bodies(session, cutoff=cutoff, limit=policy.batch_size)
            dropped += done
            if done < policy.batch_size:
                break
    click.echo(f"dropped the body of {dropped} event(s) received before {cutoff:%Y-%m-%d %H:%M}")
