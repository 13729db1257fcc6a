"""GET /api/contacts/export: every contact streamed as a CSV or NDJSON attachment."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable

import pytest
from flask import Flask

from crm_core.contact_files import exporting
from crm_core.customers.services import name_key
from crm_core.models import Contact, Customer, CustomerKind


@pytest.fixture
def contact_ids(app: Flask) -> list[int]:
    with app.extensions["crm"].sessions.begin() as session:
        customer = Customer(name="Acme", name_key=name_key("Acme"), kind=CustomerKind.COMPANY)
        contacts = [
            Contact(
                customer=customer,
                email=f"person{n}@acme.example",
                email_normalized=f"person{n}@acme.example",
                full_name=f"Person {n}",
                is_primary=n == 0,
            )
            for n in range(7)
        ]
        session.add_all(contacts)
        session.flush()
        return [c.id for c in contacts]


def get(app: Flask, key: str, query: str = "") -> object:
    return app.test_client().get(
        f"/api/contacts/export{query}", headers={"Authorization": f"Bearer {key}"}
    )


@pytest.mark.parametrize(("page_size", "chunks"), [(3, 4), (500, 2)])
def test_csv_is_streamed_as_an_attachment(
    app: Flask,
    make_key: Callable[..., str],
    contact_ids: list[int],
    page_size: int,
    chunks: int,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(exporting, "PAGE_SIZE", page_size)
    response = get(app, make_key("reader", "read"))
    assert response.status_code == 200
    assert response.is_streamed
    assert response.headers["Content-Type"] == "text/csv; charset=utf-8"
    disposition = response.headers["Content-Disposition"]
    assert disposition.startswith('attachment; filename="contacts-')
    assert disposition.endswith('.csv"')
    # The header, then seven contacts sent a page at a time as they are read.
    sent = list(response.iter_encoded())
    assert len(sent) == chunks
    rows = list(csv.DictReader(io.StringIO(b"".join(sent).decode())))
    assert [int(row["id"]) for row in rows] == contact_ids
    assert rows[0]["email"] == "person0@acme.example"
    assert rows[0]["company"] == "Acme"


def test_ndjson_is_one_contact_a_line(
    app: Flask, make_key: Callable[..., str], contact_ids: list[int]
) -> None:
    response = get(app, make_key("reader", "read"), "?format=ndjson")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/x-ndjson"
    assert response.headers["Content-Disposition"].endswith('.ndjson"')
    lines = response.get_data(as_text=True).splitlines()
    assert [json.loads(line)["id"] for line in lines] == contact_ids


def test_no_contacts_is_a_header_alone(app: Flask, make_key: Callable[..., str]) -> None:
    response = get(app, make_key("reader", "read"))
    assert response.get_data(as_text=True) == ",".join(exporting.EXPORT_COLUMNS) + "\n"


def test_an_unknown_format_is_a_problem_naming_the_field(
    app: Flask, make_key: Callable[..., str]
) -> None:
    response = get(app, make_key("reader", "read"), "?format=xlsx")
    assert response.status_code == 400
    assert response.mimetype == "application/problem+json"
    assert [e["field"] for e in response.get_json()["errors"]] == ["format"]


def test_a_key_without_the_read_scope_is_refused(
    app: Flask, make_key: Callable[..., str], contact_ids: list[int]
) -> None:
    response = get(app, make_key("writer", "write"))
    assert response.status_code == 403
    assert response.get_json()["scope"] == "read"


def test_a_paused_stream_blocks_no_writer(
    app: Flask,
    make_key: Callable[..., str],
    contact_ids: list[int],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A client that reads slowly holds no transaction: on SQLite one would stop every writer."""
    monkeypatch.setattr(exporting, "PAGE_SIZE", 3)
    response = get(app, make_key("reader", "read"))
    chunks = response.iter_encoded()
    next(chunks)  # the header
    first = next(chunks).decode()  # three contacts; the client pauses here
    with app.extensions["crm"].sessions.begin() as session:
        session.get(Contact, contact_ids[-1]).job_title = "written meanwhile"
    rest = b"".join(chunks).decode()
    assert first.count("\n") + rest.count("\n") == len(contact_ids)
    assert rest.splitlines()[-1].split(",")[0] == str(contact_ids[-1])
    assert "written meanwhile" in rest
