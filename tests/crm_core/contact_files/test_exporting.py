"""Contacts exported page by page, as CSV or NDJSON; an export imported back creates nothing."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from crm_core import models as m
from crm_core.contact_files.columns import EXPORT_COLUMNS
from crm_core.contact_files.exporting import contact_pages, export_contacts
from crm_core.contact_files.importing import import_contacts, read_rows
from crm_core.customers.models import ConsentStatus
from crm_core.leads.normalize import free_mail_domains
from crm_core.people.permissions import Actor
from tests.factories import ContactFactory, CustomerFactory, SourceFactory

OPERATOR = Actor.operator("exporter")
STATED = dt.datetime(2026, 11, 2, 9, 30, tzinfo=dt.UTC)


def people(session: Session) -> list[m.Contact]:
    acme = CustomerFactory(name="Acme", domain="acme.example")
    person = CustomerFactory(name="Solo Person", kind=m.CustomerKind.PERSON)
    return [
        ContactFactory(
            customer=acme,
            email="Road.Runner@acme.example",
            email_normalized="road.runner@acme.example",
            full_name="Road Runner",
            is_primary=True,
            tags=["vip"],
            attributes={"consent": True, "tier": 2},
            phone="+14155552671",
            phone_raw="+1 415 555 2671",
            phone_valid=True,
            marketing_consent=ConsentStatus.GRANTED,
            marketing_consent_at=STATED,
            marketing_consent_source_id=SourceFactory().id,
            marketing_consent_method="form_checkbox",
        ),
        ContactFactory(customer=acme, full_name='=HYPERLINK("http://evil")', country="FR"),
        ContactFactory(
            customer=person,
            first_name="Solo",
            last_name="Person",
            full_name="Solo Person",
            email=None,
            email_normalized=None,
            phone="+442079460958",
            phone_raw="020 7946 0958",
            phone_valid=True,
        ),
    ]


def sessions_in(session: Session) -> sessionmaker[Session]:
    """Sessions on the test's connection, inside its transaction (rolled back after the test)."""
    return sessionmaker(bind=session.connection(), join_transaction_mode="create_savepoint")


def text(session: Session, format: str) -> str:
    session.flush()
    return "".join(export_contacts(sessions_in(session), format=format))


def test_csv_has_the_columns_and_a_row_per_contact(session: Session) -> None:
    made = people(session)
    rows = list(csv.DictReader(io.StringIO(text(session, "csv"))))
    assert list(rows[0]) == list(EXPORT_COLUMNS)
    assert [int(r["id"]) for r in rows] == [c.id for c in made]
    first, second, third = rows
    assert (first["company"], first["is_primary"], first["tags"]) == ("Acme", "true", '["vip"]')
    assert json.loads(first["attributes"]) == {"consent": True, "tier": 2}
    # A spreadsheet must not run a name from a public form, nor a phone number, as a formula.
    assert second["full_name"] == '\'=HYPERLINK("http://evil")'
    assert first["phone"] == "'+14155552671"
    assert (third["company"], third["email"]) == ("", "")
    consent = [name for name in EXPORT_COLUMNS if name.startswith("marketing_consent")]
    assert [first[name] for name in consent] == [
        "granted",
        "2026-11-02T09:30:00+00:00",
        str(made[0].marketing_consent_source_id),
        "form_checkbox",
    ]
    # Never stated: every consent column is empty.
    assert [second[name] for name in consent] == ["", "", "", ""]


def test_ndjson_is_one_json_object_a_line(session: Session) -> None:
    made = people(session)
    lines = text(session, "ndjson").splitlines()
    objects = [json.loads(line) for line in lines]
    assert [o["id"] for o in objects] == [c.id for c in made]
    assert objects[0]["tags"] == ["vip"]
    assert objects[0]["attributes"] == {"consent": True, "tier": 2}
    assert objects[1]["full_name"] == '=HYPERLINK("http://evil")'
    assert objects[2]["company"] is None
    assert (objects[0]["marketing_consent"], objects[0]["marketing_consent_at"]) == (
        "granted",
        "2026-11-02T09:30:00+00:00",
    )
    assert objects[0]["marketing_consent_source_id"] == made[0].marketing_consent_source_id
    assert objects[0]["marketing_consent_method"] == "form_checkbox"
    assert objects[1]["marketing_consent"] is None


@pytest.mark.parametrize("page_size", [1, 2, 3, 500])
def test_pages_by_id_read_every_contact_once(session: Session, page_size: int) -> None:
    made = people(session)
    session.flush()
    pages = list(contact_pages(sessions_in(session), page_size=page_size))
    assert [row["id"] for page in pages for row in page] == [c.id for c in made]
    assert [len(page) for page in pages][:-1] == [page_size] * (len(pages) - 1)


def test_no_session_is_open_while_a_page_is_handed_on(session: Session) -> None:
    """Each page's transaction ends before the reader gets it: a slow reader holds no lock."""
    people(session)
    session.flush()
    factory = sessions_in(session)
    opened: list[Session] = []

    def tracked() -> Session:
        opened.append(factory())
        return opened[-1]

    for page in contact_pages(tracked, page_size=2):  # type: ignore[arg-type]
        assert page
        assert all(not s.in_transaction() and not s.identity_map for s in opened)
    assert len(opened) == 2


def test_an_unknown_format_is_refused(session: Session) -> None:
    with pytest.raises(ValueError, match="choose csv or ndjson"):
        export_contacts(sessions_in(session), format="xlsx")


def test_an_export_imported_back_creates_nothing(session: Session) -> None:
    people(session)
    before = session.scalar(select(func.count()).select_from(m.Contact))
    exported = text(session, "csv")
    report = import_contacts(
        session,
        read_rows(io.StringIO(exported)),
        actor=OPERATOR,
        free_domains=free_mail_domains(),
    )
    assert [row.action for row in report.rows] == ["match", "match", "match"]
    assert all(row.detail.endswith("by email, nothing new") for row in report.rows[:2])
    assert report.rows[2].detail.endswith("by phone, nothing new")
    assert session.scalar(select(func.count()).select_from(m.Contact)) == before


def test_an_import_leaves_the_stated_consent_as_it_is(session: Session) -> None:
    """A file is no statement of consent: its consent columns are read by no one."""
    made = people(session)
    session.flush()
    source_id = made[0].marketing_consent_source_id
    rows = list(csv.DictReader(io.StringIO(text(session, "csv"))))
    rows[0]["marketing_consent"] = "denied"
    rows[0]["marketing_consent_at"] = "2026-12-01T00:00:00+00:00"
    rows[1]["marketing_consent"] = "granted"
    edited = io.StringIO()
    writer = csv.DictWriter(edited, fieldnames=EXPORT_COLUMNS)
    writer.writeheader()
    writer.writerows(rows)
    report = import_contacts(
        session,
        read_rows(io.StringIO(edited.getvalue())),
        actor=OPERATOR,
        free_domains=free_mail_domains(),
    )
    assert [row.action for row in report.rows] == ["match", "match", "match"]
    session.expire_all()
    first, second = session.get(m.Contact, made[0].id), session.get(m.Contact, made[1].id)
    assert first is not None
    assert second is not None
    assert (first.marketing_consent, first.marketing_consent_at) == ("granted", STATED)
    assert first.marketing_consent_source_id == source_id
    assert second.marketing_consent is None
