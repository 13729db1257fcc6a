"""The People pages: search, a customer's page, and the writes a person does there (edit a
contact, make one primary, merge duplicates, log a call), refused for a viewer."""

from __future__ import annotations

import html as html_text
import re
from collections.abc import Callable

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from crm_core.activities.models import Activity
from crm_core.customers.models import Contact
from crm_core.people.models import AuditEntry
from tests.webhooks.conftest import Sender
from tests.webhooks.console.conftest import customer_of, queries_for, stored_lead

SignedIn = Callable[[str], tuple[FlaskClient, str]]


def _two_contacts(app: Flask, sender: Sender) -> tuple[int, int, int]:
    """A customer (Engines Ltd) with two contacts: Ada (primary) and Charles."""
    stored_lead(app, sender, email="ada@engines.example", full_name="Ada Lovelace",
                company="Engines Ltd")  # fmt: skip
    stored_lead(app, sender, email="charles@engines.example", full_name="Charles Babbage",
                company="Engines Ltd")  # fmt: skip
    customer_id, ada = customer_of(app, "ada@engines.example")
    other_customer, charles = customer_of(app, "charles@engines.example")
    assert other_customer == customer_id
    return customer_id, ada, charles


def test_search_finds_people_and_links_to_them(
    app: Flask, sender: Sender, signed_in: SignedIn
) -> None:
    customer_id, ada, _ = _two_contacts(app, sender)
    client, _ = signed_in("viewer")
    html = client.get("/console/people?q=ada@engines.example").get_data(as_text=True)
    assert f'href="/console/people/contacts/{ada}">Ada Lovelace' in html
    contact = client.get(f"/console/people/contacts/{ada}")
    assert contact.status_code == 303
    assert contact.headers["Location"] == f"/console/people/customers/{customer_id}#contact-{ada}"
    empty = client.get("/console/people").get_data(as_text=True)
    assert f'href="/console/people/customers/{customer_id}">Engines Ltd' in empty
    assert 'hx-trigger="every 5s"' in empty  # the list of recent customers refreshes itself
    too_long = client.get("/console/people?q=" + "x" * 201)
    assert too_long.status_code == 422
    assert 'id="q-error">must be 1 to 200 characters' in too_long.get_data(as_text=True)


def test_a_customer_page_shows_contacts_the_primary_and_the_timeline(
    app: Flask, sender: Sender, signed_in: SignedIn
) -> None:
    customer_id, ada, charles = _two_contacts(app, sender)
    client, _ = signed_in("viewer")
    html = client.get(f"/console/people/customers/{customer_id}").get_data(as_text=True)
    assert "<h1>Engines Ltd" in html
    ada_row = html.split(f'id="contact-{ada}"')[1].split("</tr>")[0]
    charles_row = html.split(f'id="contact-{charles}"')[1].split("</tr>")[0]
    assert "primary" in ada_row
    assert "primary" not in charles_row
    assert "lead captured" in html.split('<ol class="timeline">')[1]
    assert "deliverable" in ada_row
    assert client.get("/console/people/customers/999999").status_code == 404


def test_the_timeline_filters_by_kind(app: Flask, sender: Sender, signed_in: SignedIn) -> None:
    customer_id, _, _ = _two_contacts(app, sender)
    client, token = signed_in("agent")
    client.post(
        f"/console/people/customers/{customer_id}/activities",
        data={"type": "note", "summary": "Prefers mornings", "csrf_token": token},
    )
    page = f"/console/people/customers/{customer_id}"
    notes = client.get(f"{page}?type=note").get_data(as_text=True)
    timeline = notes.split('<ol class="timeline">')[1].split("</ol>")[0]
    assert "Prefers mornings" in timeline
    assert "lead captured" not in timeline
    both = client.get(f"{page}?type=note&type=lead_captured").get_data(as_text=True)
    assert "lead captured" in both.split('<ol class="timeline">')[1].split("</ol>")[0]


def test_editing_a_contact_shows_bad_input_beside_its_field(
    app: Flask, sender: Sender, signed_in: SignedIn
) -> None:
    _, ada, charles = _two_contacts(app, sender)
    client, token = signed_in("agent")
    form = client.get(f"/console/people/contacts/{ada}/edit").get_data(as_text=True)
    found = re.search(r'name="etag" value="([^"]+)"', form)
    assert found
    etag = html_text.unescape(found.group(1))
    bad = client.post(
        f"/console/people/contacts/{ada}/edit",
        data={"email": "not an address", "full_name": "Ada K.", "etag": etag,
              "csrf_token": token},
    )  # fmt: skip
    assert bad.status_code == 422
    html = bad.get_data(as_text=True)
    assert re.search(r'id="f-email-error">[^<]*@', html)
    assert 'aria-invalid="true"' in html
    assert 'value="Ada K."' in html  # what was typed stays
    taken = client.post(
        f"/console/people/contacts/{charles}/edit",
        data={"email": "ada@engines.example", "csrf_token": token},
    )
    assert taken.status_code == 422
    assert 'id="f-email-error"' in taken.get_data(as_text=True)
    good = client.post(
        f"/console/people/contacts/{ada}/edit",
        data={"email": "ada@engines.example", "full_name": "Ada King", "phone": "",
              "etag": etag, "csrf_token": token},
    )  # fmt: skip
    assert good.status_code == 303
    with app.extensions["crm"].sessions() as session:
        contact = session.get(Contact, ada)
        assert contact is not None
        assert contact.full_name == "Ada King"
        audited = session.scalars(
            select(AuditEntry).where(AuditEntry.entity == "contact", AuditEntry.entity_id == ada)
        ).all()
    assert any(entry.actor.startswith("user:agent-") for entry in audited)
    stale = client.post(
        f"/console/people/contacts/{ada}/edit",
        data={"full_name": "Ada Byron", "etag": etag, "csrf_token": token},
    )
    assert stale.status_code == 409
    assert "Someone changed this record" in stale.get_data(as_text=True)


def test_making_a_contact_primary_and_merging_duplicates(
    app: Flask, sender: Sender, signed_in: SignedIn
) -> None:
    customer_id, ada, charles = _two_contacts(app, sender)
    client, token = signed_in("agent")
    made = client.post(f"/console/people/contacts/{charles}/primary", data={"csrf_token": token})
    assert made.status_code == 303
    with app.extensions["crm"].sessions() as session:
        assert session.get(Contact, charles).is_primary  # type: ignore[union-attr]
    refused = client.post(
        f"/console/people/contacts/{ada}/merge", data={"into": "", "csrf_token": token}
    )
    assert refused.status_code == 422
    assert 'id="f-into-error"' in refused.get_data(as_text=True)
    merged = client.post(
        f"/console/people/contacts/{ada}/merge", data={"into": str(charles), "csrf_token": token}
    )
    assert merged.status_code == 303
    assert merged.headers["Location"] == f"/console/people/customers/{customer_id}"
    with app.extensions["crm"].sessions() as session:
        assert session.get(Contact, ada).merged_into == charles  # type: ignore[union-attr]
    itself = client.post(
        f"/console/people/customers/{customer_id}/merge",
        data={"into": str(customer_id), "csrf_token": token},
    )
    assert itself.status_code == 422
    assert "cannot be merged into itself" in itself.get_data(as_text=True)


def test_logging_a_call_and_bad_input_beside_its_field(
    app: Flask, sender: Sender, signed_in: SignedIn
) -> None:
    customer_id, ada, _ = _two_contacts(app, sender)
    client, token = signed_in("agent")
    path = f"/console/people/customers/{customer_id}/activities"
    bad = client.post(
        path, data={"type": "call", "summary": "", "duration_minutes": "-3", "csrf_token": token}
    )
    assert bad.status_code == 422
    html = bad.get_data(as_text=True)
    assert 'id="f-summary-error"' in html
    assert 'id="f-duration_minutes-error"' in html
    good = client.post(
        path,
        data={"type": "call", "summary": "Called about the order", "contact_id": str(ada),
              "duration_minutes": "12", "occurred_at": "2026-11-30T09:15", "csrf_token": token},
    )  # fmt: skip
    assert good.status_code == 303
    with app.extensions["crm"].sessions() as session:
        call = session.scalars(select(Activity).where(Activity.type == "call")).one()
    assert (call.customer_id, call.contact_id, call.summary) == (
        customer_id, ada, "Called about the order",
    )  # fmt: skip


def test_a_viewer_sees_no_write_button_and_a_forged_write_is_refused(
    app: Flask, sender: Sender, signed_in: SignedIn
) -> None:
    customer_id, ada, charles = _two_contacts(app, sender)
    client, token = signed_in("viewer")
    html = client.get(f"/console/people/customers/{customer_id}").get_data(as_text=True)
    assert 'method="post"' not in html.split("</header>")[1]  # only the sign-out form
    assert "/edit" not in html
    assert "/merge" not in html
    writes = [
        (f"/console/people/contacts/{ada}/edit", {"full_name": "Forged"}),
        (f"/console/people/contacts/{charles}/primary", {}),
        (f"/console/people/contacts/{ada}/merge", {"into": str(charles)}),
        (f"/console/people/customers/{customer_id}/activities", {"type": "note", "summary": "x"}),
    ]
    for path, data in writes:
        answer = client.post(path, data={**data, "csrf_token": token})
        assert answer.status_code == 403, path
        assert answer.mimetype == "text/html"
    assert client.get(f"/console/people/contacts/{ada}/edit").status_code == 403
    with app.extensions["crm"].sessions() as session:
        assert session.get(Contact, ada).full_name == "Ada Lovelace"  # type: ignore[union-attr]
        assert session.scalar(select(func.count()).select_from(Activity)) == 2


def test_a_customer_page_costs_the_same_queries_for_2_or_12_contacts(
    app: Flask, sender: Sender, signed_in: SignedIn
) -> None:
    customer_id, _, _ = _two_contacts(app, sender)
    client, _ = signed_in("viewer")
    paths = (f"/console/people/customers/{customer_id}", "/console/people")
    few = {path: queries_for(app, client, path) for path in paths}
    for n in range(10):
        stored_lead(app, sender, email=f"p{n}@engines.example", company="Engines Ltd")
    many = {path: queries_for(app, client, path) for path in paths}
    assert many == few
