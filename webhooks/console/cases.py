"""Cases (``/console/cases``): an agent's inbox and a case's page.

The inbox lists the signed-in user's open cases and the unassigned ones (or every open one,
or one status or priority), the one due first on top, a badge on each case past its SLA.
A case's page shows its thread: inbound mail with its HTML sanitized (nh3) and shown only in
a sandboxed frame, the replies sent, the notes. Its writes go through the same services as
the API: a reply through ``crm_core.support.replies.send_case_reply`` (threaded, guarded by a
one-use form key against a double submit), an internal note through
``crm_core.editing.activities`` (never mailed), status, priority and assignee through
``crm_core.editing.cases.update_case`` (the allowed transitions, the SLA recomputed).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass
from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from sqlalchemy import case, func, or_, select
from sqlalchemy.orm import Session, joinedload
from werkzeug.wrappers import Response

from crm_core.activities.models import Activity, ActivityType
from crm_core.customers.models import Customer
from crm_core.db import utcnow
from crm_core.editing import activities, cases
from crm_core.editing.records import RecordConflict, RecordNotFound
from crm_core.errors import InvalidInput
from crm_core.idempotency.services import (
    KeyInProgress,
    KeyReused,
    StoredAnswer,
    claim,
    complete,
    release,
)
from crm_core.mail import CaseTokens
from crm_core.mail.html_text import sanitize_html
from crm_core.mail_transport.backends import backend_from_url
from crm_core.people.models import User
from crm_core.people.permissions import Permission, Role
from crm_core.readapi.lists import sla_breached
from crm_core.support.models import CasePriority, CaseStatus, SupportCase
from crm_core.support.replies import CaseNotFound, send_case_reply
from crm_core.support.sla import SlaPolicy
from webhooks.console.access import console_route, current_actor
from webhooks.console.forms import FormErrors
from webhooks.state import crm_state

bp = Blueprint("cases", __name__)

INBOX_SIZE = 100
THREAD_SIZE = 200
SHOWS = ("mine", "unassigned", "open", "all")
CLOSED = (CaseStatus.RESOLVED, CaseStatus.CLOSED)
NOTE_FIELDS = ("summary", "details")
CASE_FIELDS = ("status", "priority", "assignee")
_MAX_ID = 2**63 - 1


@dataclass(frozen=True)
class InboxFilter:
    """What the inbox shows: ``show`` (mine and unassigned, by default), a status, a priority."""

    show: str = "mine"
    status: str = ""
    priority: str = ""

    @classmethod
    def of(cls, args: Any) -> InboxFilter:
        show = args.get("show", "mine")
        status = args.get("status", "")
        priority = args.get("priority", "")
        return cls(
            show if show in SHOWS else "mine",
            status if status in set(CaseStatus) else "",
            priority if priority in set(CasePriority) else "",
        )


def _due() -> Any:
    """The case's next due time: the first response while unanswered, else its resolution."""
    c = SupportCase
    return case(
        (
            c.first_responded_at.is_(None),
            func.coalesce(c.first_response_due_at, c.resolution_due_at),
        ),
        else_=c.resolution_due_at,
    )


def inbox(db: Session, *, email: str, shown: InboxFilter, now: dt.datetime) -> list[dict[str, Any]]:
    """The cases the inbox shows, the one due first on top, in one query."""
    c = SupportCase
    due = _due().label("due")
    breached = func.coalesce(sla_breached(now), False).label("breached")
    query = (
        select(c, Customer.name, due, breached)
        .join(Customer, Customer.id == c.customer_id)
        .options(joinedload(c.contact))
        .order_by(due.is_(None), due, c.id)
        .limit(INBOX_SIZE)
    )
    if shown.status:
        query = query.where(c.status == shown.status)
    elif shown.show != "all":
        query = query.where(c.status.not_in(CLOSED))
    if shown.priority:
        query = query.where(c.priority == shown.priority)
    if shown.show == "mine":
        query = query.where(or_(c.assignee == email, c.assignee.is_(None)))
    elif shown.show == "unassigned":
        query = query.where(c.assignee.is_(None))
    return [
        {"case": row[0], "customer": row[1], "due": row[2], "breached": bool(row[3])}
        for row in db.execute(query).unique()
    ]


@bp.get("")
@console_route(Permission.READ)
def index() -> str:
    """The inbox."""
    actor = current_actor()
    shown = InboxFilter.of(request.args)
    email = actor.label.removeprefix("user:")
    with crm_state().sessions() as db:
        rows = inbox(db, email=email, shown=shown, now=utcnow())
        return render_template(
            "console/cases/index.html",
            rows=rows,
            shown=shown,
            me=email,
            shows=SHOWS,
            statuses=list(CaseStatus),
            priorities=list(CasePriority),
        )


@dataclass(frozen=True)
class ThreadItem:
    """One entry of a case's thread, as the page shows it."""

    activity: Activity
    text: str
    html: str | None  # sanitized, for a sandboxed frame

    @property
    def kind(self) -> str:
        return str(self.activity.type)


def _thread_item(activity: Activity) -> ThreadItem:
    details = activity.details if isinstance(activity.details, dict) else {}
    text = details.get("text") or details.get("body") or ""
    raw_html = details.get("html")
    html = None
    if activity.type == ActivityType.EMAIL_RECEIVED and isinstance(raw_html, str) and raw_html:
        html = sanitize_html(raw_html)
    return ThreadItem(activity, text if isinstance(text, str) else "", html)


def _thread(db: Session, case_id: int) -> tuple[list[ThreadItem], bool]:
    query = (
        select(Activity)
        .where(Activity.support_case_id == case_id)
        .order_by(Activity.occurred_at.desc(), Activity.id.desc())
        .limit(THREAD_SIZE + 1)
    )
    rows = list(db.scalars(query))
    more = len(rows) > THREAD_SIZE
    return [_thread_item(a) for a in reversed(rows[:THREAD_SIZE])], more


def _assignees(db: Session) -> list[str]:
    query = (
        select(User.email)
        .where(User.disabled_at.is_(None), User.role != Role.VIEWER)
        .order_by(User.email)
    )
    return list(db.scalars(query))


def _render_case(
    case_id: int,
    *,
    reply_form: dict[str, str] | None = None,
    reply_errors: FormErrors | None = None,
    note_form: dict[str, str] | None = None,
    note_errors: FormErrors | None = None,
    case_form: dict[str, str] | None = None,
    case_errors: FormErrors | None = None,
    status: int = 200,
) -> tuple[str, int]:
    with crm_state().sessions() as db:
        found = db.get(SupportCase, case_id, options=[joinedload(SupportCase.contact)])
        if found is None:
            abort(404, f"There is no case {case_id}.")
        customer = db.get(Customer, found.customer_id)
        thread, more = _thread(db, case_id)
        breached = bool(
            db.scalar(
                select(func.coalesce(sla_breached(utcnow()), False)).where(
                    SupportCase.id == case_id
                )
            )
        )
        allowed = [found.status, *sorted(cases.TRANSITIONS[found.status])]
        page = render_template(
            "console/cases/show.html",
            c=found,
            customer=customer,
            thread=thread,
            more=more,
            breached=breached,
            statuses=allowed,
            priorities=list(CasePriority),
            assignees=_assignees(db),
            reply_form=reply_form or {"form_key": secrets.token_urlsafe(16)},
            reply_errors=reply_errors or FormErrors(),
            note_form=note_form or {},
            note_errors=note_errors or FormErrors(),
            case_form=case_form
            or {
                "status": found.status,
                "priority": found.priority,
                "assignee": found.assignee or "",
            },
            case_errors=case_errors or FormErrors(),
        )
    return page, status


def _case_id(case_id: int) -> int:
    if case_id > _MAX_ID:
        abort(404, f"There is no case {case_id}.")
    return case_id


@bp.get("/<int:case_id>")
@console_route(Permission.READ)
def show(case_id: int) -> tuple[str, int]:
    """A case's page: its facts, its thread, and (by role) the forms that change it."""
    return _render_case(_case_id(case_id))


def _renamed(
    exc: InvalidInput | RecordConflict, names: dict[str, str], known: tuple[str, ...] = ()
) -> FormErrors:
    """The service's messages beside the form's fields, where a form field has another name
    than the service's (``body`` is the whole document to ``FormErrors``)."""
    errors = FormErrors()
    pairs = (
        [(exc.field or "", str(exc))]
        if isinstance(exc, RecordConflict)
        else [(str(e.loc[0]) if e.loc else "", e.msg) for e in exc.errors]
    )
    for name, message in pairs:
        name = names.get(name, name)
        errors.add(name if not known or name in known or name in names.values() else "", message)
    return errors


def _owner() -> str:
    actor = current_actor()
    return f"{actor.kind}:{actor.id if actor.id is not None else actor.label}"


@bp.post("/<int:case_id>/reply")
@console_route(Permission.REPLY)
def reply(case_id: int) -> Response | tuple[str, int]:
    """Send a reply, threaded; a second submit of the same form sends nothing more."""
    _case_id(case_id)
    form = {name: request.form.get(name, "") for name in ("message", "form_key")}
    key = form["form_key"].strip()
    if not key or len(key) > 100:
        errors = FormErrors(general=["The form was incomplete; write the reply again."])
        form["form_key"] = secrets.token_urlsafe(16)
        return _render_case(case_id, reply_form=form, reply_errors=errors, status=422)
    crm = crm_state()
    settings = crm.settings
    owner, key = _owner(), f"console-reply:{case_id}:{key}"
    fingerprint = hashlib.sha256(form["message"].encode()).hexdigest()
    ttl = dt.timedelta(hours=settings.idempotency_key_hours)
    try:
        with crm.sessions.begin() as db:
            first = claim(db, actor=owner, key=key, fingerprint=fingerprint, ttl=ttl)
    except (KeyInProgress, KeyReused):
        first = StoredAnswer(303, {}, "")
    if first is not None:
        flash("This reply was already sent; it was not sent twice.", "notice")
        return redirect(url_for(".show", case_id=case_id, _anchor="thread"), 303)
    backend = backend_from_url(
        settings.resolved_mail_url(), rate_per_second=settings.mail_rate_per_second
    )
    try:
        outcome = send_case_reply(
            crm.sessions,
            backend,
            actor=current_actor(),
            case_id=case_id,
            body=form["message"],
            html=None,
            sender=settings.mail_from,
            case_tokens=CaseTokens.from_secret(settings.resolved_secret_key()),
        )
    except (CaseNotFound, InvalidInput) as exc:
        with crm.sessions.begin() as db:
            release(db, actor=owner, key=key)
        if isinstance(exc, CaseNotFound):
            abort(404, f"There is no case {case_id}.")
        errors = _renamed(exc, {"body": "message"})
        return _render_case(case_id, reply_form=form, reply_errors=errors, status=422)
    except BaseException:
        with crm.sessions.begin() as db:
            release(db, actor=owner, key=key)
        raise
    with crm.sessions.begin() as db:
        complete(db, actor=owner, key=key, answer=StoredAnswer(303, {}, ""))
    if outcome.delivery == "sent":
        flash("Reply sent.", "notice")
    else:
        flash(
            f"The reply is on the case, but its delivery {outcome.delivery}: {outcome.error}",
            "error",
        )
    return redirect(url_for(".show", case_id=case_id, _anchor="thread"), 303)


@bp.post("/<int:case_id>/notes")
@console_route(Permission.WRITE)
def add_note(case_id: int) -> Response | tuple[str, int]:
    """An internal note on the case: on its timeline, never mailed."""
    _case_id(case_id)
    form = {name: request.form.get(name, "").strip() for name in NOTE_FIELDS}

    def work(db: Session) -> None:
        found = db.get(SupportCase, case_id)
        if found is None:
            raise RecordNotFound("case", case_id)
        document = {
            "type": "note",
            "summary": form["summary"],
            "body": form["details"] or None,
            "support_case_id": case_id,
            "customer_id": found.customer_id,
        }
        activities.log_activity(db, actor=current_actor(), document=document)

    try:
        with crm_state().sessions.begin() as db:
            work(db)
    except (InvalidInput, RecordConflict) as exc:
        errors = _renamed(exc, {"body": "details"}, known=NOTE_FIELDS)
        return _render_case(case_id, note_form=form, note_errors=errors, status=422)
    except RecordNotFound:
        abort(404, f"There is no case {case_id}.")
    flash("Note added.", "notice")
    return redirect(url_for(".show", case_id=case_id, _anchor="thread"), 303)


@bp.post("/<int:case_id>")
@console_route(Permission.WRITE)
def update(case_id: int) -> Response | tuple[str, int]:
    """Change the status, priority or assignee (an empty assignee unassigns the case)."""
    _case_id(case_id)
    form = {name: request.form.get(name, "").strip() for name in CASE_FIELDS}
    with crm_state().sessions() as db:
        found = db.get(SupportCase, case_id)
        if found is None:
            abort(404, f"There is no case {case_id}.")
        current = {"status": found.status, "priority": found.priority,
                   "assignee": found.assignee or ""}  # fmt: skip
    document: dict[str, Any] = {
        name: (form[name] or None) if name == "assignee" else form[name]
        for name in CASE_FIELDS
        if form[name] != current[name] and (form[name] or name == "assignee")
    }
    if not document:
        flash("Nothing changed.", "notice")
        return redirect(url_for(".show", case_id=case_id), 303)
    sla = SlaPolicy.from_settings(crm_state().settings)
    try:
        with crm_state().sessions.begin() as db:
            cases.update_case(
                db, actor=current_actor(), case_id=case_id, document=document, sla=sla
            )
    except (InvalidInput, RecordConflict) as exc:
        errors = FormErrors.of(exc, known=CASE_FIELDS)
        return _render_case(case_id, case_form=form, case_errors=errors, status=422)
    except RecordNotFound:
        abort(404, f"There is no case {case_id}.")
    flash("Case updated.", "notice")
    return redirect(url_for(".show", case_id=case_id), 303)
