"""A case's activities come a page at a time, each body cut to an excerpt linking to the whole."""

from __future__ import annotations

import datetime as dt

from flask import Flask

from crm_core import models as m
from crm_core.customers.services import create_customer
from crm_core.readapi.queries import EXCERPT_CHARS
from tests.webhooks.conftest import Sender
from tests.webhooks.test_api import get

__all__ = ["get"]


def _case_with_mail(app: Flask, *, emails: int, text: str) -> int:
    with app.extensions["crm"].sessions.begin() as session:
        contact = m.Contact(email="ann@client.example", email_normalized="ann@client.example")
        customer = create_customer(session, name="Client", primary_contact=contact)
        case = m.SupportCase(customer_id=customer.id, contact_id=contact.id, subject="Slow")
        session.add(case)
        session.flush()
        start = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
        for n in range(emails):
            session.add(
                m.Activity(
                    type="email_received",
                    direction="inbound",
                    occurred_at=start + dt.timedelta(minutes=n),
                    summary=f"mail {n}",
                    details={"text": f"{n}:" + text, "headers": {}},
                    customer_id=customer.id,
                    contact_id=contact.id,
                    support_case_id=case.id,
                )
            )
        return case.id


def test_a_case_with_many_long_mails_pages_its_activities(app: Flask, get) -> None:
    case_id = _case_with_mail(app, emails=7, text="x" * 200_000)
    first = get(f"/api/cases/{case_id}", limit="3")
    assert first.status_code == 200
    assert len(first.get_data()) < 10_000  # three 200 KB bodies, cut to excerpts
    page = first.json["activities"]
    assert [a["summary"] for a in page["items"]] == ["mail 0", "mail 1", "mail 2"]
    seen = [a["summary"] for a in page["items"]]
    while page["next"]:
        page = get(f"/api/cases/{case_id}", limit="3", cursor=page["next"]).json["activities"]
        seen += [a["summary"] for a in page["items"]]
    assert seen == [f"mail {n}" for n in range(7)]
    item = first.json["activities"]["items"][1]
    assert "details" not in item
    assert item["excerpt"] == ("1:" + "x" * 200_000)[:EXCERPT_CHARS]
    assert item["truncated"] is True
    whole = get(item["href"])
    assert whole.status_code == 200
    assert whole.json["details"]["text"] == "1:" + "x" * 200_000


def test_a_short_body_is_whole_in_the_excerpt(app: Flask, get) -> None:
    case_id = _case_with_mail(app, emails=1, text="short")
    [item] = get(f"/api/cases/{case_id}").json["activities"]["items"]
    assert (item["excerpt"], item["truncated"]) == ("0:short", False)


def test_a_bad_cursor_or_limit_is_a_problem_and_an_unknown_activity_404(app: Flask, get) -> None:
    case_id = _case_with_mail(app, emails=1, text="x")
    for params in ({"cursor": "W10"}, {"limit": "0"}, {"limit": "x"}):
        response = get(f"/api/cases/{case_id}", **params)
        assert response.status_code == 400, params
        assert response.mimetype == "application/problem+json"
    for ident in ("999999", str(2**63)):
        assert get(f"/api/activities/{ident}").status_code == 404


def test_an_activity_has_an_etag_of_its_document(
    app: Flask, sender: Sender, api_key: str, get
) -> None:
    case_id = _case_with_mail(app, emails=2, text="hello")
    first, second = get(f"/api/cases/{case_id}").json["activities"]["items"]
    shown = get(first["href"])
    tag = shown.headers["ETag"]
    assert tag.startswith('"activity-')
    assert not tag.startswith("W/")
    assert get(first["href"]).headers["ETag"] == tag
    assert get(second["href"]).headers["ETag"] != tag
    auth = {"Authorization": f"Bearer {api_key}"}
    held = sender.client.get(first["href"], headers={**auth, "If-None-Match": f'"x", {tag}'})
    assert (held.status_code, held.get_data(), held.headers["ETag"]) == (304, b"", tag)
    with app.extensions["crm"].sessions.begin() as session:
        activity = session.get(m.Activity, first["id"])
        activity.summary = "mail 0, redacted"
    changed = sender.client.get(first["href"], headers={**auth, "If-None-Match": tag})
    assert changed.status_code == 200
    assert changed.json["summary"] == "mail 0, redacted"
    assert changed.headers["ETag"] != tag
