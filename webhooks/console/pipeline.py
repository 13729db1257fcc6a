"""Pipeline (``/console/pipeline``): the opportunities as a board, one column per stage, with
each stage's count and totals by currency.

Each card has a small form to move its deal to another stage (plain HTML, so it works without
script; htmx swaps the board in place when it is there). Moving goes through
``crm_core.editing.opportunities.update_opportunity``, the API's own: the change is on the
timeline and audited, and a deal marked won signs exactly one agreement.
"""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal
from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from sqlalchemy import func, select, union_all
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response

from crm_core.customers.models import Customer
from crm_core.editing import opportunities
from crm_core.editing.records import RecordConflict, RecordNotFound
from crm_core.errors import InvalidInput
from crm_core.people.permissions import Permission
from crm_core.readapi.queries import get_opportunity
from crm_core.sales.models import Opportunity, OpportunityStage
from webhooks.console.access import console_route, current_actor
from webhooks.console.forms import FormErrors
from webhooks.state import crm_state

bp = Blueprint("pipeline", __name__)

STAGES = tuple(OpportunityStage)
PER_STAGE = 50  # cards shown in a column: the most recently changed
_MAX_ID = 2**63 - 1


def _totals(db: Session, owner: str) -> dict[str, dict[str, Any]]:
    """Per stage: how many deals, and their amounts summed by currency."""
    query = select(
        Opportunity.stage, Opportunity.currency, func.count(), func.sum(Opportunity.amount)
    ).group_by(Opportunity.stage, Opportunity.currency)
    if owner:
        query = query.where(Opportunity.owner == owner)
    totals: dict[str, dict[str, Any]] = {s: {"count": 0, "amounts": {}} for s in STAGES}
    for stage, currency, count, amount in db.execute(query):
        entry = totals.setdefault(stage, {"count": 0, "amounts": {}})
        entry["count"] += count
        if amount is not None:
            key = currency or "—"
            entry["amounts"][key] = entry["amounts"].get(key, Decimal(0)) + Decimal(amount)
    return totals


def _cards(db: Session, owner: str) -> dict[str, list[dict[str, Any]]]:
    """The latest ``PER_STAGE`` deals of each stage with their customer's name, in one query.

    One limited arm per stage, read newest first from ``(stage, updated_at)`` (or from
    ``(owner, updated_at, id)`` for one person's board): the board reads its 250 cards, not
    every deal.
    """
    arms = []
    for stage in STAGES:
        arm = select(Opportunity.id).where(Opportunity.stage == stage.value)
        if owner:
            arm = arm.where(Opportunity.owner == owner)
        order = (Opportunity.updated_at.desc(), Opportunity.id.desc())
        arms.append(select(arm.order_by(*order).limit(PER_STAGE).subquery()))
    shown = union_all(*arms).subquery()
    query = (
        select(Opportunity, Customer.name)
        .join(shown, shown.c.id == Opportunity.id)
        .join(Customer, Customer.id == Opportunity.customer_id)
        .order_by(Opportunity.updated_at.desc(), Opportunity.id.desc())
    )
    board: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for deal, customer in db.execute(query):
        board[deal.stage].append({"deal": deal, "customer": customer})
    return board


def render_board(
    *, errors: dict[int, FormErrors] | None = None, status: int = 200
) -> tuple[str, int]:
    owner = request.args.get("owner", "").strip()[:255]
    with crm_state().sessions() as db:
        page = render_template(
            "console/pipeline/index.html",
            stages=STAGES,
            totals=_totals(db, owner),
            board=_cards(db, owner),
            per_stage=PER_STAGE,
            owner=owner,
            errors=errors or {},
        )
    return page, status


@bp.get("")
@console_route(Permission.READ)
def index() -> tuple[str, int]:
    """The board (``?owner=`` shows one person's deals)."""
    return render_board()


@bp.get("/<int:opportunity_id>")
@console_route(Permission.READ)
def show(opportunity_id: int) -> str:
    """One deal: its facts, the agreements it signed, and (by role) the form to move it."""
    if opportunity_id > _MAX_ID:
        abort(404, f"There is no opportunity {opportunity_id}.")
    with crm_state().sessions() as db:
        deal = get_opportunity(db, opportunity_id=opportunity_id)
        if deal is None:
            abort(404, f"There is no opportunity {opportunity_id}.")
        customer = db.get(Customer, deal["customer_id"])
        return render_template(
            "console/pipeline/show.html",
            d=deal,
            customer=customer,
            stages=STAGES,
        )


@bp.post("/<int:opportunity_id>/stage")
@console_route(Permission.WRITE)
def move(opportunity_id: int) -> Response | tuple[str, int]:
    """Move a deal to another stage; ``won`` signs its agreement, ``lost`` closes it."""
    if opportunity_id > _MAX_ID:
        abort(404, f"There is no opportunity {opportunity_id}.")
    stage = request.form.get("stage", "").strip()
    try:
        with crm_state().sessions.begin() as db:
            deal = opportunities.update_opportunity(
                db, actor=current_actor(), opportunity_id=opportunity_id, document={"stage": stage}
            )
            name, now = deal.name, deal.stage
    except (InvalidInput, RecordConflict) as exc:
        return render_board(
            errors={opportunity_id: FormErrors.of(exc, known=("stage",))}, status=422
        )
    except RecordNotFound:
        abort(404, f"There is no opportunity {opportunity_id}.")
    flash(f"{name} is now {now}.", "notice")
    return redirect(url_for(".index", _anchor=f"deal-{opportunity_id}"), 303)
