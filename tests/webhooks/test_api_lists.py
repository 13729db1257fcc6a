"""The read API's lists, search and timelines over HTTP: shapes, paging, problems, scopes."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import pytest
from flask import Flask

from crm_core import models as m
from tests.webhooks.conftest import Sender
from tests.webhooks.test_api import entity, post, process_all

LIST_PATHS = [
    "/api/customers",
    "/api/contacts",
    "/api/cases",
    "/api/opportunities",
    "/api/orders",
    "/api/products",
    "/api/agreements",
]


@pytest.fixture
def get(sender: Sender, api_key: str):
    def fetch(path: str, **params: str):
        return sender.client.get(
            path, query_string=params, headers={"Authorization": f"Bearer {api_key}"}
        )

    return fetch


def add_cases(app: Flask) -> dict[str, int]:
    """Cases of one customer, committed: two of ann's (one open and late), one of bob's."""
    now = dt.datetime.now(dt.UTC)
    with app.extensions["crm"].sessions.begin() as session:
        customer = m.Customer(name="Acme", name_key="acme", kind="company")
        session.add(customer)
        session.flush()
        cases = {
            "late": m.SupportCase(
                customer_id=customer.id,
                subject="Printer on fire",
                status="open",
                assignee="ann",
                first_response_due_at=now - dt.timedelta(hours=1),
            ),
            "fine": m.SupportCase(
                customer_id=customer.id, subject="Password reset", status="open", assignee="ann"
            ),
            "bobs": m.SupportCase(
                customer_id=customer.id, subject="Invoice", status="pending", assignee="bob"
            ),
        }
        session.add_all(cases.values())
        session.flush()
        return {name: case.id for name, case in cases.items()}


@pytest.mark.parametrize("path", LIST_PATHS)
def test_every_list_answers_items_and_next(get, path: str) -> None:
    response = get(path, updated_since="2026-01-01T00:00:00Z", limit="200")
    assert response.status_code == 200, response.json
    assert response.json == {"items": [], "next": None}


def test_cases_are_filtered_and_paged_over_http(
    app: Flask, sender: Sender, api_key: str, get
) -> None:
    made = add_cases(app)
    page = get("/api/cases", assignee="ann", status="open", limit="1").json
    assert [c["id"] for c in page["items"]] == [made["late"]]
    rest = get("/api/cases", assignee="ann", status="open", cursor=page["next"]).json
    assert [c["id"] for c in rest["items"]] == [made["fine"]]
    assert rest["next"] is None
    breached = get("/api/cases", sla_breached="true").json["items"]
    assert [c["id"] for c in breached] == [made["late"]]
    # A repeated parameter is every one of its values.
    both = sender.client.get(
        "/api/cases?status=open&status=pending", headers={"Authorization": f"Bearer {api_key}"}
    )
    assert sorted(c["id"] for c in both.json["items"]) == sorted(made.values())


@pytest.mark.parametrize(
    ("path", "params", "field"),
    [
        ("/api/cases", {"status": "opne"}, "status"),
        ("/api/cases", {"sla_breached": "perhaps"}, "sla_breached"),
        ("/api/orders", {"customer_id": "x"}, "customer_id"),
        ("/api/opportunities", {"stage": "lost,nope"}, "stage"),
        ("/api/products", {"updated_since": "last tuesday"}, "updated_since"),
        ("/api/agreements", {"colour": "blue"}, "colour"),
        ("/api/search", {"q": " "}, "q"),
        ("/api/search", {}, "q"),
    ],
)
def test_bad_parameters_are_400_problems_naming_them(
    get, path: str, params: dict[str, str], field: str
) -> None:
    response = get(path, **params)
    assert response.status_code == 400
    assert response.mimetype == "application/problem+json"
    assert [e["field"] for e in response.json["errors"]] == [field]
    assert field in response.json["detail"]


def test_search_puts_the_exact_address_first(app: Flask, sender: Sender, get) -> None:
    post(sender, "leads", {"email": "ada@navy.example", "full_name": "Ada Lovelace"})
    post(sender, "leads", {"email": "ada@navy.example.org", "full_name": "Ada King"})
    process_all(app)
    page = get("/api/search", q="ADA@navy.example").json
    first = page["items"][0]
    assert (first["type"], first["title"], first["score"]) == ("contact", "Ada Lovelace", 2.0)
    assert set(first) == {"type", "id", "title", "snippet", "score", "href"}
    assert get(first["href"]).json["email"] == "ada@navy.example"
    names = {item["title"] for item in get("/api/search", q="Lovelace").json["items"]}
    assert "Ada Lovelace" in names


def test_contact_and_opportunity_timelines_page_like_the_customers(
    app: Flask, sender: Sender, get
) -> None:
    first = post(sender, "leads", {"email": "grace@navy.example", "full_name": "Grace Hopper"})
    post(sender, "leads", {"email": "grace@navy.example", "job_title": "Rear Admiral"})
    deal = {"external_id": "D-7", "email": "grace@navy.example", "name": "Compiler"}
    opened = post(sender, "deals", {**deal, "stage": "proposal"})
    post(sender, "deals", {**deal, "stage": "won"})
    process_all(app)
    contact_id = entity(app, first, "contact")
    page = get(f"/api/contacts/{contact_id}/timeline", limit="1").json
    assert len(page["items"]) == 1
    seen = list(page["items"])
    while page["next"]:
        page = get(f"/api/contacts/{contact_id}/timeline", limit="1", cursor=page["next"]).json
        seen.extend(page["items"])
    assert all(a["contact_id"] == contact_id for a in seen)
    assert [a["type"] for a in seen].count("lead_captured") == 2
    stamps = [(a["occurred_at"], a["id"]) for a in seen]
    assert stamps == sorted(stamps, reverse=True)
    assert len({a["id"] for a in seen}) == len(seen)

    opportunity_id = entity(app, opened, "opportunity")
    deal_page = get(f"/api/opportunities/{opportunity_id}/timeline").json
    assert deal_page["items"]
    assert all(a["opportunity_id"] == opportunity_id for a in deal_page["items"])
    assert set(deal_page["items"][0]) >= {"type", "occurred_at", "excerpt", "href"}


@pytest.mark.parametrize("path", ["/api/contacts/{}/timeline", "/api/opportunities/{}/timeline"])
def test_timelines_of_unknown_records_are_404_problems(get, path: str) -> None:
    for ident in ("999999", str(2**63)):
        response = get(path.format(ident))
        assert response.status_code == 404
        assert response.mimetype == "application/problem+json"


@pytest.mark.parametrize(
    "path",
    [*LIST_PATHS, "/api/search?q=ada", "/api/contacts/1/timeline", "/api/opportunities/1/timeline"],
)
def test_a_key_without_the_read_scope_is_403_naming_it(
    sender: Sender, make_key: Callable[..., str], path: str
) -> None:
    key = make_key("writer", "write")
    response = sender.client.get(path, headers={"Authorization": f"Bearer {key}"})
    assert response.status_code == 403
    assert response.mimetype == "application/problem+json"
    assert response.json["scope"] == "read"
