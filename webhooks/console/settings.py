"""Settings (``/console/settings``, admins): sources with each provider's setup steps and
secret rotation, API keys with scopes (a new key shown once, revoking), users and roles, IMAP
mailboxes with a connection test, notification subscriptions with their delivery log, and the
suppression list (removing an address needs a reason).

Each write goes through the service the CLI and the API use (``crm_core.ingestion.services``,
``crm_core.people.api_keys``, ``crm_core.people.users``, ``crm_core.bounces.suppression``)
with the permission each needs. A new secret or key is shown on the page that answers the
form, once, and never again.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response

from crm_core.admin import sources as audited_sources
from crm_core.admin.suppressions import remove_suppression
from crm_core.bounces.models import Suppression
from crm_core.errors import InvalidInput
from crm_core.ingestion import services as sources
from crm_core.mailboxes import imap
from crm_core.mailboxes import services as mailboxes
from crm_core.notifications import services as notifications
from crm_core.notifications.models import DeliveryAttempt, NotificationDelivery
from crm_core.people import api_keys, users
from crm_core.people.permissions import ALL_SCOPES, Permission, Role
from crm_core.providers import PROVIDERS
from webhooks.console.access import console_route, current_actor
from webhooks.console.forms import FormErrors
from webhooks.state import crm_state

bp = Blueprint("settings", __name__)

SUPPRESSIONS_SHOWN = 100
DELIVERIES_SHOWN = 50
TEST_TIMEOUT_SECONDS = 10.0
KEY_FIELDS = ("name", "scopes", "user_email")
USER_FIELDS = ("email", "role", "password")


def _suppressions(db: Session) -> list[Suppression]:
    query = select(Suppression).order_by(Suppression.id.desc()).limit(SUPPRESSIONS_SHOWN)
    return list(db.scalars(query))


def _base_url() -> str:
    return crm_state().settings.public_url or request.host_url


def render_settings(status: int = 200, **shown: Any) -> tuple[str, int]:
    """The settings page; ``shown`` holds a form's values and errors, or a secret to show."""
    actor = current_actor()
    with crm_state().sessions() as db:
        listed_sources = [
            {
                "source": s,
                "provider": PROVIDERS[s.provider],
                "endpoint": PROVIDERS[s.provider].endpoint(_base_url(), s.name),
            }
            for s in sources.list_sources(db)
        ]
        page = render_template(
            "console/settings/index.html",
            sources=listed_sources,
            keys=api_keys.list_api_keys(db, actor=actor) if actor.allows(Permission.KEYS) else [],
            users=users.list_users(db, actor=actor),
            suppressions=_suppressions(db),
            mailboxes=mailboxes.list_mailboxes(db),
            subscriptions=notifications.list_subscriptions(db),
            tested=shown.get("tested"),
            scopes=[s.value for s in ALL_SCOPES],
            roles=[r.value for r in Role],
            key_form=shown.get("key_form", {}),
            key_errors=shown.get("key_errors", FormErrors()),
            user_form=shown.get("user_form", {}),
            user_errors=shown.get("user_errors", FormErrors()),
            removal_form=shown.get("removal_form", {}),
            removal_errors=shown.get("removal_errors", FormErrors()),
            new_key=shown.get("new_key"),
            new_secret=shown.get("new_secret"),
        )
    return page, status


@bp.get("")
@console_route(Permission.USERS)
def index() -> tuple[str, int]:
    """Sources, API keys, users and suppressions."""
    return render_settings()


@bp.get("/sources/<name>")
@console_route(Permission.SOURCES)
def source(name: str) -> str:
    """A source: its provider's setup steps with this platform's URL."""
    with crm_state().sessions() as db:
        try:
            found = sources.get_source(db, name=name)
        except sources.SourceNotFound:
            abort(404, f"There is no source {name!r}.")
        provider = PROVIDERS[found.provider]
        steps = provider.setup_steps(provider.endpoint(_base_url(), found.name))
        return render_template(
            "console/settings/source.html", source=found, provider=provider, steps=steps
        )


@bp.post("/sources/<name>/rotate")
@console_route(Permission.SOURCES)
def rotate(name: str) -> Response | tuple[str, int]:
    """A new signing secret for a standard source; the old one verifies for the grace time."""
    hours = crm_state().settings.rotation_grace_hours
    try:
        with crm_state().sessions.begin() as db:
            secret = audited_sources.rotate_secret(
                db, actor=current_actor(), name=name, grace=dt.timedelta(hours=hours)
            )
    except sources.SourceNotFound:
        abort(404, f"There is no source {name!r}.")
    except InvalidInput as exc:
        flash(f"{name}: {exc.errors[0].msg if exc.errors else exc}", "error")
        return redirect(url_for(".index", _anchor="sources"), 303)
    shown = {"source": name, "secret": secret, "hours": hours}
    return render_settings(new_secret=shown)


@bp.post("/keys")
@console_route(Permission.KEYS)
def create_key() -> tuple[str, int]:
    """Create an API key; the page shows it this once."""
    form = {name: request.form.get(name, "").strip() for name in ("name", "user_email")}
    chosen = request.form.getlist("scopes")
    try:
        with crm_state().sessions.begin() as db:
            _, key = api_keys.create_api_key(
                db,
                actor=current_actor(),
                name=form["name"],
                scopes=chosen,
                user_email=form["user_email"] or None,
            )
    except InvalidInput as exc:
        errors = FormErrors.of(exc, known=KEY_FIELDS)
        return render_settings(422, key_form={**form, "scopes": chosen}, key_errors=errors)
    return render_settings(new_key={"name": form["name"], "key": key})


@bp.post("/keys/<name>/revoke")
@console_route(Permission.KEYS)
def revoke_key(name: str) -> Response:
    """Stop a key from working; it stays listed."""
    try:
        with crm_state().sessions.begin() as db:
            api_keys.revoke_api_key(db, actor=current_actor(), name=name)
    except api_keys.ApiKeyNotFound:
        abort(404, f"There is no API key {name!r}.")
    flash(f"API key {name} revoked.", "notice")
    return redirect(url_for(".index", _anchor="keys"), 303)


@bp.post("/users")
@console_route(Permission.USERS)
def add_user() -> Response | tuple[str, int]:
    """Add a user with a role and a first password."""
    form = {name: request.form.get(name, "") for name in USER_FIELDS}
    try:
        with crm_state().sessions.begin() as db:
            users.add_user(db, actor=current_actor(), email=form["email"].strip(),
                           role=form["role"], password=form["password"])  # fmt: skip
    except InvalidInput as exc:
        form["password"] = ""
        return render_settings(
            422, user_form=form, user_errors=FormErrors.of(exc, known=USER_FIELDS)
        )
    flash(f"User {form['email'].strip()} added.", "notice")
    return redirect(url_for(".index", _anchor="users"), 303)


@bp.post("/users/<path:email>/role")
@console_route(Permission.USERS)
def set_role(email: str) -> Response:
    """Give a user another role (it applies at their next click)."""
    role = request.form.get("role", "")
    try:
        with crm_state().sessions.begin() as db:
            users.set_role(db, actor=current_actor(), email=email, role=role)
    except users.UserNotFound:
        abort(404, f"There is no user {email}.")
    except InvalidInput as exc:
        flash(f"{email}: {exc.errors[0].msg if exc.errors else exc}", "error")
        return redirect(url_for(".index", _anchor="users"), 303)
    flash(f"{email} is now {role}.", "notice")
    return redirect(url_for(".index", _anchor="users"), 303)


@bp.post("/suppressions/remove")
@console_route(Permission.USERS)
def remove() -> Response | tuple[str, int]:
    """Take an address off the suppression list, with a reason kept on record (admins, as the
    rest of this page; the API has no such write, the CLI's ``crm suppressions remove`` is
    the operator's)."""
    form = {name: request.form.get(name, "").strip() for name in ("email", "reason")}
    try:
        with crm_state().sessions.begin() as db:
            removed = remove_suppression(
                db, actor=current_actor(), email=form["email"], reason=form["reason"]
            )
    except InvalidInput as exc:
        errors = FormErrors.of(exc, known=("email", "reason"))
        return render_settings(422, removal_form=form, removal_errors=errors)
    if removed is None:
        errors = FormErrors(fields={"email": [f"{form['email']} is not on the list"]})
        return render_settings(422, removal_form=form, removal_errors=errors)
    flash(f"{form['email']} taken off the suppression list.", "notice")
    return redirect(url_for(".index", _anchor="suppressions"), 303)


@bp.post("/mailboxes/<name>/test")
@console_route(Permission.MAILBOXES)
def test_mailbox(name: str) -> tuple[str, int]:
    """Connect to the mailbox, log in and open its folder (read-only): what the poller does
    first, without fetching anything."""
    with crm_state().sessions() as db:
        mailbox = mailboxes.get_mailbox(db, name=name)
        if mailbox is None:
            abort(404, f"There is no mailbox {name!r}.")
        db.expunge(mailbox)
    try:
        count = imap.check(mailbox, timeout=TEST_TIMEOUT_SECONDS)
    except imap.MailboxError as exc:
        return render_settings(tested={"name": name, "ok": False, "message": str(exc)})
    message = f"connected; {count} message{'' if count == 1 else 's'} in {mailbox.folder}"
    return render_settings(tested={"name": name, "ok": True, "message": message})


@bp.get("/subscriptions/<int:subscription_id>")
@console_route(Permission.SUBSCRIPTIONS)
def subscription(subscription_id: int) -> str:
    """A subscription's latest deliveries, each with its attempts (two queries in all)."""
    with crm_state().sessions() as db:
        found = next(
            (s for s in notifications.list_subscriptions(db) if s.id == subscription_id), None
        )
        if found is None:
            abort(404, f"There is no subscription {subscription_id}.")
        deliveries = list(
            db.scalars(
                select(NotificationDelivery)
                .where(NotificationDelivery.subscription_id == subscription_id)
                .order_by(NotificationDelivery.id.desc())
                .limit(DELIVERIES_SHOWN)
            )
        )
        attempts: dict[int, list[DeliveryAttempt]] = {d.id: [] for d in deliveries}
        if deliveries:
            query = (
                select(DeliveryAttempt)
                .where(DeliveryAttempt.delivery_id.in_(list(attempts)))
                .order_by(DeliveryAttempt.id)
            )
            for attempt in db.scalars(query):
                attempts[attempt.delivery_id].append(attempt)
        return render_template(
            "console/settings/subscription.html",
            subscription=found,
            deliveries=deliveries,
            attempts=attempts,
        )
