"""Campaigns (``/console/campaigns``): the list, composing one (subject, text, HTML and a
segment built with a form, with a live count of its recipients), a preview of the real
message for a chosen contact, schedule, pause, resume and cancel, and its stats as a chart
drawn on the server that refreshes itself while the campaign sends.

Everything goes through ``crm_core.campaigns`` (``services``, ``segments``, ``sending``), as
the API's ``/api/campaigns`` does, with the same permission (``campaigns``) for each change.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from werkzeug.datastructures import MultiDict
from werkzeug.wrappers import Response

from crm_core.admin import campaigns as audited
from crm_core.campaigns import sending, services
from crm_core.campaigns.models import CampaignStatus, MarketingCampaign
from crm_core.campaigns.segment_fields import FIELDS, OPS
from crm_core.campaigns.segments import parse_segment, segment_query
from crm_core.customers.models import Contact
from crm_core.errors import FieldError, InvalidInput, PermanentError
from crm_core.mail.html_text import sanitize_html
from crm_core.people.permissions import Permission
from webhooks.console.access import console_route, current_actor
from webhooks.console.charts import STATUS_CLASS, nice_ceiling
from webhooks.console.forms import FormErrors
from webhooks.state import crm_state
from workers.publish import enqueue_campaign_work

bp = Blueprint("campaigns", __name__)

RULES = 3  # rule rows in the segment form
COMPOSE_FIELDS = ("name", "code", "subject", "text", "html", "send_at", "mode")
CHART_SERIES = ("pending", "sent", "failed", "unknown", "bounced", "unsubscribed", "complained")
LIVE = (CampaignStatus.SCHEDULED, CampaignStatus.SENDING)
REFRESH_SECONDS = 2
ACTIONS = ("schedule", "send", "pause", "resume", "cancel")
_MAX_ID = 2**63 - 1


# --- The segment form -----------------------------------------------------------------------


def _rule_value(field: str, op: str, raw: str) -> Any:
    """A rule's value as typed in the form, as the segment document wants it."""
    if op == "exists" or field == "has_open_case":
        return {"true": True, "yes": True, "false": False, "no": False}.get(raw.lower(), raw)
    if op == "in":
        return [part.strip() for part in raw.split(",") if part.strip()]
    return raw


def segment_of(form: MultiDict[str, str] | dict[str, str]) -> dict[str, Any]:
    """The segment document the form's rule rows describe (``{}``: every contact)."""
    items = []
    for i in range(RULES):
        field = (form.get(f"rule-{i}-field") or "").strip()
        if not field:
            continue
        op = (form.get(f"rule-{i}-op") or "eq").strip()
        raw = (form.get(f"rule-{i}-value") or "").strip()
        items.append({"field": field, "op": op, "value": _rule_value(field, op, raw)})
    if not items:
        return {}
    mode = "any" if form.get("mode") == "any" else "all"
    return {mode: items}


def _segment_errors(exc: InvalidInput) -> FormErrors:
    """Each bad rule's message beside its row (``rule-N``), the rest beside the segment."""
    errors = FormErrors()
    for error in exc.errors:
        loc = [str(part) for part in error.loc]
        index = next((part for part in loc if part.isdigit()), None)
        name = f"rule-{index}" if index is not None and int(index) < RULES else "segment"
        errors.add(name, error.msg)
    return errors


def recipients(db: Session, segment: dict[str, Any]) -> int:
    """How many contacts a send to ``segment`` would reach now (suppressed ones left out)."""
    query = segment_query(
        parse_segment(segment),
        exclude_suppressed=True,
        require_consent=crm_state().settings.campaigns_require_consent,
    ).order_by(None)
    return int(db.scalar(select(func.count()).select_from(query.subquery())) or 0)


def _instant(raw: str) -> dt.datetime | None:
    """A ``datetime-local`` value, read as UTC."""
    if not raw:
        return None
    try:
        moment = dt.datetime.fromisoformat(raw)
    except ValueError:
        raise InvalidInput([FieldError(("send_at",), "must be a date and a time")]) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


# --- Pages -------------------------------------------------------------------------------------


@bp.get("")
@console_route(Permission.READ)
def index() -> str:
    """Every campaign with its status, newest first."""
    with crm_state().sessions() as db:
        listed = [
            {"id": c.id, "name": c.name, "code": c.code, "status": c.status, "send_at": c.send_at}
            for c in services.list_campaigns(db)
        ]
    return render_template("console/campaigns/index.html", campaigns=listed)


def _render_compose(
    form: dict[str, str], errors: FormErrors, count: int | None, status: int = 200
) -> tuple[str, int]:
    page = render_template(
        "console/campaigns/compose.html",
        form=form,
        errors=errors,
        rules=RULES,
        fields=sorted(FIELDS),
        ops=OPS,
        count=count,
    )
    return page, status


@bp.get("/new")
@console_route(Permission.CAMPAIGNS)
def compose() -> tuple[str, int]:
    """The form to write a campaign."""
    with crm_state().sessions() as db:
        count = recipients(db, {})
    return _render_compose({"mode": "all"}, FormErrors(), count)


@bp.get("/recipients")
@console_route(Permission.READ)
def count_recipients() -> tuple[str, int]:
    """The live count of the segment the compose form describes (an htmx fragment)."""
    errors = FormErrors()
    count = None
    try:
        with crm_state().sessions() as db:
            count = recipients(db, segment_of(request.args))
    except InvalidInput as exc:
        errors = _segment_errors(exc)
    page = render_template("console/campaigns/_count.html", count=count, errors=errors)
    return page, 200


@bp.post("/new")
@console_route(Permission.CAMPAIGNS)
def create() -> Response | tuple[str, int]:
    """Create the campaign: a draft, or scheduled when a time is given."""
    form = {name: request.form.get(name, "") for name in COMPOSE_FIELDS}
    for i in range(RULES):
        for part in ("field", "op", "value"):
            form[f"rule-{i}-{part}"] = request.form.get(f"rule-{i}-{part}", "")
    segment = segment_of(request.form)
    errors = FormErrors()
    try:
        send_at = _instant(form["send_at"].strip())
        with crm_state().sessions.begin() as db:
            campaign = audited.create_campaign(
                db,
                actor=current_actor(),
                name=form["name"],
                code=form["code"],
                subject=form["subject"],
                text=form["text"],
                html=form["html"] or None,
                segment=segment,
                send_at=send_at,
            )
            campaign_id = campaign.id
    except InvalidInput as exc:
        for error in exc.errors:
            loc = [str(part) for part in error.loc]
            if loc and loc[0] == "segment":
                errors.fields.update(_segment_errors(InvalidInput([error])).fields)
            else:
                errors.add(loc[0] if loc else "", error.msg)
    if errors:
        count = None
        try:
            with crm_state().sessions() as db:
                count = recipients(db, segment)
        except InvalidInput:
            pass
        return _render_compose(form, errors, count, 422)
    flash("Campaign saved.", "notice")
    return redirect(url_for(".show", campaign_id=campaign_id), 303)


@dataclass(frozen=True)
class StatBar:
    name: str
    value: int
    y: float
    width: float
    css: str


@dataclass(frozen=True)
class StatsChart:
    """Horizontal bars, one per outcome, on a shared scale."""

    width: int
    height: int
    left: int
    bars: list[StatBar]
    top: float


def stats_chart(stats: dict[str, int]) -> StatsChart:
    width, left, row = 640, 110, 26
    top = nice_ceiling(max((stats.get(name, 0) for name in CHART_SERIES), default=0))
    plot = width - left - 60
    bars = [
        StatBar(
            name,
            stats.get(name, 0),
            8 + i * row,
            stats.get(name, 0) / top * plot,
            STATUS_CLASS.get(name, "s6"),
        )
        for i, name in enumerate(CHART_SERIES)
    ]
    return StatsChart(width, 16 + len(CHART_SERIES) * row, left, bars, top)


def _view(campaign_id: int) -> services.CampaignView:
    if campaign_id > _MAX_ID:
        abort(404, f"There is no campaign {campaign_id}.")
    with crm_state().sessions() as db:
        try:
            return services.get_campaign_view(db, campaign_id=campaign_id)
        except services.CampaignNotFoundError:
            abort(404, f"There is no campaign {campaign_id}.")


def _render_show(
    view: services.CampaignView,
    *,
    errors: FormErrors | None = None,
    preview: dict[str, Any] | None = None,
    status: int = 200,
) -> tuple[str, int]:
    with crm_state().sessions() as db:
        campaign = db.get(MarketingCampaign, view.id)
        assert campaign is not None
        texts = {"text": campaign.text_template, "html": campaign.html_template}
    page = render_template(
        "console/campaigns/show.html",
        v=view,
        texts=texts,
        chart=stats_chart(view.stats),
        live=view.status in LIVE,
        refresh_seconds=REFRESH_SECONDS,
        allowed={a for a in ACTIONS if view.status in services.TRANSITIONS[a]},
        errors=errors or FormErrors(),
        form=request.values,
        preview=preview,
    )
    return page, status


@bp.get("/<int:campaign_id>")
@console_route(Permission.READ)
def show(campaign_id: int) -> tuple[str, int]:
    """A campaign: its content, segment, status, stats chart, and (by role) its actions."""
    return _render_show(_view(campaign_id))


@bp.get("/<int:campaign_id>/stats")
@console_route(Permission.READ)
def stats(campaign_id: int) -> str:
    """The status and the stats chart alone: what the page refreshes while it sends."""
    view = _view(campaign_id)
    return render_template(
        "console/campaigns/_stats.html",
        v=view,
        chart=stats_chart(view.stats),
        live=view.status in LIVE,
        refresh_seconds=REFRESH_SECONDS,
    )


def _preview(db: Session, campaign_id: int, contact_id: int) -> dict[str, Any] | None:
    identity = sending.MailIdentity.from_settings(crm_state().settings)
    message = sending.preview_message(
        db, campaign_id=campaign_id, contact_id=contact_id, identity=identity
    )
    if message is None:
        return None
    text = message.get_body(("plain",))
    html = message.get_body(("html",))
    return {
        "to": str(message["To"]),
        "subject": str(message["Subject"]),
        "text": text.get_content() if text is not None else "",
        "html": sanitize_html(html.get_content()) if html is not None else None,
    }


def _contact_id(db: Session, raw: str) -> int | None:
    """A contact's id from what was typed: its id or its e-mail address."""
    if raw.isascii() and raw.isdigit():
        return int(raw) if int(raw) <= _MAX_ID else None
    found = db.scalar(
        select(Contact.id)
        .where(Contact.email_normalized == raw.lower(), Contact.merged_into.is_(None))
        .limit(1)
    )
    return found


@bp.get("/<int:campaign_id>/preview")
@console_route(Permission.READ)
def preview(campaign_id: int) -> tuple[str, int]:
    """The message the campaign would send one contact (``?contact=`` an id or an address)."""
    view = _view(campaign_id)
    raw = request.args.get("contact", "").strip()
    errors = FormErrors()
    shown = None
    with crm_state().sessions() as db:
        contact_id = _contact_id(db, raw) if raw else None
        if contact_id is None:
            errors.add("contact", "give a contact's id or e-mail address" if not raw
                       else f"there is no contact {raw}")  # fmt: skip
        else:
            try:
                shown = _preview(db, campaign_id, contact_id)
            except (InvalidInput, PermanentError) as exc:
                errors.add("contact", f"the message cannot be built: {exc}")
            if shown is None and not errors:
                errors.add("contact", f"there is no contact {raw}")
    return _render_show(view, errors=errors, preview=shown, status=422 if errors else 200)


@bp.post("/<int:campaign_id>/<any(schedule, send, pause, resume, cancel):action>")
@console_route(Permission.CAMPAIGNS)
def act(campaign_id: int, action: str) -> Response | tuple[str, int]:
    """Schedule (at ``send_at``), send now, pause, resume or cancel."""
    view = _view(campaign_id)
    try:
        with crm_state().sessions.begin() as db:
            actor = current_actor()
            if action == "schedule":
                send_at = _instant(request.form.get("send_at", "").strip())
                audited.schedule(db, actor=actor, campaign_id=campaign_id, send_at=send_at)
            elif action == "send":
                audited.send_now(db, actor=actor, campaign_id=campaign_id)
            else:
                getattr(audited, action)(db, actor=actor, campaign_id=campaign_id)
    except InvalidInput as exc:
        return _render_show(view, errors=FormErrors.of(exc, known=("send_at",)), status=422)
    except services.CampaignStateError as exc:
        return _render_show(view, errors=FormErrors(general=[str(exc)]), status=409)
    except PermanentError as exc:
        return _render_show(view, errors=FormErrors(general=[str(exc)]), status=422)
    if action == "send":
        enqueue_campaign_work()
    elif action == "resume":
        enqueue_campaign_work(campaign_id)
    done = {"schedule": "scheduled", "send": "sending now", "pause": "paused",
            "resume": "resumed", "cancel": "cancelled"}  # fmt: skip
    flash(f"Campaign {done[action]}.", "notice")
    return redirect(url_for(".show", campaign_id=campaign_id), 303)
