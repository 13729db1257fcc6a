"""``crm followups`` and ``crm subscriptions``: what is left waiting, and who hears of it."""

from __future__ import annotations

import click

from crm_cli.session import operator, transaction
from crm_core.admin import subscriptions as admin
from crm_core.config import get_settings
from crm_core.errors import InvalidInput
from crm_core.followups import services as followup_services
from crm_core.followups.models import FollowUpStatus
from crm_core.followups.rules import RulesError, load_rules
from crm_core.notifications import services as notification_services
from crm_core.notifications.services import ALL_EVENTS, EVENT_TYPES


@click.group()
def followups() -> None:
    """Follow-up tasks and the rules that create them."""


@followups.command("list")
@click.option(
    "--status",
    type=click.Choice([s.value for s in FollowUpStatus]),
    default=FollowUpStatus.OPEN.value,
    show_default=True,
)
@click.option("--limit", type=click.IntRange(1, 200), default=50, show_default=True)
def list_followups(status: str, limit: int) -> None:
    """Follow-up tasks, the longest-due first: id, due time, owner, rule, title."""
    with transaction() as session:
        page = followup_services.list_followups(session, status=status, cursor=None, limit=limit)
    if not page.items:
        click.echo(f"no {status} follow-ups")
    for task in page.items:
        owner = task["owner"] or "-"
        click.echo(f"{task['id']}\t{task['due_at']}\t{owner}\t{task['rule']}\t{task['title']}")
    if page.next:
        click.echo(f"(more; use the API's cursor {page.next} or a larger --limit)")


@followups.command("rules")
def show_rules() -> None:
    """Check the rules file (CRM_FOLLOWUP_RULES, or the defaults) and list its rules."""
    path = get_settings().followup_rules
    try:
        rules = load_rules(path)
    except RulesError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"rules from {path or 'the shipped defaults'}:")
    for rule in rules.rule:
        state = "" if rule.enabled else "\t(disabled)"
        click.echo(f"{rule.name}\t{rule.kind}\tafter {rule.after}{state}")


@followups.command("done")
@click.argument("task_id", type=int)
def complete(task_id: int) -> None:
    """Mark follow-up TASK_ID done."""
    with transaction() as session:
        task = followup_services.close_followup(
            session, actor=operator(), task_id=task_id, status=FollowUpStatus.DONE
        )
    if task is None:
        raise click.ClickException(f"no follow-up {task_id}")
    click.echo(f"follow-up {task_id}: {task['status']}")


@click.group()
def subscriptions() -> None:
    """URLs that receive signed notifications of the event types they choose."""


@subscriptions.command("add")
@click.argument("url")
@click.option(
    "--events",
    required=True,
    help=f"Comma-separated event types: {', '.join(EVENT_TYPES)}, or {ALL_EVENTS} for all.",
)
def add_subscription(url: str, events: str) -> None:
    """Subscribe URL; its signing secret is printed alone on the last line."""
    with transaction() as session:
        try:
            created = admin.add_subscription(
                session, actor=operator(), url=url, events=events.split(",")
            )
        except InvalidInput as exc:
            raise click.ClickException(str(exc)) from None
    click.echo(
        f"subscription {created.id} sends {', '.join(created.events)} to {created.url}; "
        "verify its requests with this secret:"
    )
    click.echo(created.secret)


@subscriptions.command("list")
def list_subscriptions() -> None:
    """Every subscription: id, URL, events."""
    with transaction() as session:
        rows = [
            (s.id, s.url, ",".join(s.events), "enabled" if s.enabled else "disabled")
            for s in notification_services.list_subscriptions(session)
        ]
    if not rows:
        click.echo("no subscriptions")
    for ident, url, names, state in rows:
        click.echo(f"{ident}\t{url}\t{names}\t{state}")


@subscriptions.command("remove")
@click.argument("subscription_id", type=int)
def remove_subscription(subscription_id: int) -> None:
    """Delete a subscription and the notifications it is still owed."""
    with transaction() as session:
        removed = admin.remove_subscription(
            session, actor=operator(), subscription_id=subscription_id
        )
    if not removed:
        raise click.ClickException(f"no subscription {subscription_id}")
    click.echo(f"subscription {subscription_id} removed")
