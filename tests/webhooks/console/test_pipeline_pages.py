"""The Pipeline board: deals by stage with totals, moved by a form per card, won signing
exactly one agreement, refused for a viewer."""

from __future__ import annotations

from collections.abc import Callable

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from crm_core.editing import opportunities
from crm_core.people.models import AuditEntry
from crm_core.sales.models import Agreement, Opportunity
from tests.webhooks.conftest import OPERATOR, Sender
from tests.webhooks.console.conftest import customer_of, queries_for, stored_lead

SignedIn = Callable[[str], tuple[FlaskClient, str]]


def _deal(app: Flask, customer_id: int, name: str, amount: str, stage: str = "new") -> int:
    document = {"customer_id": customer_id, "name": name, "amount": amount,
                "currency": "EUR", "stage": stage}  # fmt: skip
    with app.extensions["crm"].sessions.begin() as session:
        return opportunities.create_opportunity(session, actor=OPERATOR, document=document).id


def _customer(app: Flask, sender: Sender, email: str = "buyer@deals.example") -> int:
    stored_lead(app, sender, email=email, full_name="Bea Buyer", company="Deals Ltd")
    return customer_of(app, email)[0]


def _column(html: str, stage: str) -> str:
    return html.split(f'id="stage-{stage}"')[1].split("</section>")[0]


def test_the_board_shows_deals_by_stage_with_totals(
    app: Flask, sender: Sender, signed_in: SignedIn
) -> None:
    customer_id = _customer(app, sender)
    small = _deal(app, customer_id, "Small deal", "100.50")
    _deal(app, customer_id, "Big deal", "1000")
    proposal = _deal(app, customer_id, "Proposed deal", "7", stage="proposal")
    client, _ = signed_in("viewer")
    html = client.get("/console/pipeline").get_data(as_text=True)
    new = _column(html, "new")
    assert f'id="deal-{small}"' in new
    assert "Big deal" in new
    assert '<span class="badge">2</span>' in new
    assert "1,100.50 EUR" in new
    assert f'id="deal-{proposal}"' in _column(html, "proposal")
    assert "Deals Ltd" in new
    assert "<form" not in html.split('id="board"')[1]  # a viewer has no buttons
    # The board costs the same statements however many deals it shows.
    few = queries_for(app, client, "/console/pipeline")
    for n in range(5):
        _deal(app, customer_id, f"Deal {n}", "1", stage="qualified")
    assert queries_for(app, client, "/console/pipeline") == few


def test_moving_a_deal_and_winning_it_signs_one_agreement(
    app: Flask, sender: Sender, signed_in: SignedIn
) -> None:
    customer_id = _customer(app, sender)
    deal = _deal(app, customer_id, "Renewal", "500")
    client, token = signed_in("agent")
    page = client.get("/console/pipeline").get_data(as_text=True)
    assert f'hx-post="/console/pipeline/{deal}/stage"' in page
    moved = client.post(f"/console/pipeline/{deal}/stage", data={"stage": "qualified",
                                                                "csrf_token": token})  # fmt: skip
    assert moved.status_code == 303
    assert moved.headers["Location"] == f"/console/pipeline#deal-{deal}"
    for _ in range(2):  # a second "won" (a double click) signs nothing more
        won = client.post(f"/console/pipeline/{deal}/stage", data={"stage": "won",
                                                                  "csrf_token": token})  # fmt: skip
        assert won.status_code == 303
    with app.extensions["crm"].sessions() as session:
        found = session.get(Opportunity, deal)
        assert found is not None
        assert found.stage == "won"
        assert found.closed_at is not None
        signed = session.scalar(
            select(func.count())
            .select_from(Agreement)
            .where(Agreement.origin_opportunity_id == deal)
        )
        assert signed == 1
        audited = session.scalar(
            select(func.count())
            .select_from(AuditEntry)
            .where(AuditEntry.entity == "opportunity", AuditEntry.entity_id == deal)
        )
        assert audited
        assert audited >= 3
    html = client.get("/console/pipeline").get_data(as_text=True)
    assert f'id="deal-{deal}"' in _column(html, "won")
    shown = client.get(f"/console/pipeline/{deal}").get_data(as_text=True)
    assert "<h1>Renewal" in shown
    assert '<span class="badge">active</span>' in shown  # its agreement
    assert client.get("/console/pipeline/999999").status_code == 404
    assert "500.00 EUR" in _column(html, "won")


def test_a_bad_stage_is_shown_beside_the_card(
    app: Flask, sender: Sender, signed_in: SignedIn
) -> None:
    deal = _deal(app, _customer(app, sender), "Odd", "1")
    client, token = signed_in("agent")
    refused = client.post(f"/console/pipeline/{deal}/stage", data={"stage": "sideways",
                                                                  "csrf_token": token})  # fmt: skip
    assert refused.status_code == 422
    html = refused.get_data(as_text=True)
    assert f'id="deal-{deal}-error"' in html
    assert 'aria-invalid="true"' in html
    missing = client.post("/console/pipeline/999999/stage", data={"stage": "won",
                                                                 "csrf_token": token})  # fmt: skip
    assert missing.status_code == 404


def test_a_viewers_forged_move_is_refused(app: Flask, sender: Sender, signed_in: SignedIn) -> None:
    deal = _deal(app, _customer(app, sender), "Guarded", "1")
    client, token = signed_in("viewer")
    answer = client.post(f"/console/pipeline/{deal}/stage", data={"stage": "won",
                                                                 "csrf_token": token})  # fmt: skip
    assert answer.status_code == 403
    with app.extensions["crm"].sessions() as session:
        found = session.get(Opportunity, deal)
        assert found is not None
        assert found.stage == "new"
