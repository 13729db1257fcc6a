"""Contacts imported from CSV: each line created, matched or refused by the lead rules."""

from __future__ import annotations

import io

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from crm_core import models as m
from crm_core.contact_files.importing import (
    ImportFileError,
    ImportReport,
    import_contacts,
    read_rows,
)
from crm_core.leads.normalize import free_mail_domains
from crm_core.people.models import AuditEntry
from crm_core.people.permissions import Actor, PermissionDenied
from tests.factories import ContactFactory

OPERATOR = Actor.operator("importer")

PEOPLE = """\
email,first_name,last_name,company,phone,attributes.source
ada@engines.example,Ada,Lovelace,Engines Ltd,+44 20 7946 0958,fair
charles@engines.example,Charles,Babbage,Engines Ltd,,
not-an-email,Bad,Row,,,
,,,,,
ADA@Engines.example,,,,,
,Phone,Only,,+1 415 555 2671,
,No,Way,Nowhere Inc,,
"""


def run(session: Session, text: str, *, dry_run: bool = False, **options: object) -> ImportReport:
    return import_contacts(
        session,
        read_rows(io.StringIO(text)),
        actor=OPERATOR,
        free_domains=free_mail_domains(),
        default_region="US",
        dry_run=dry_run,
        **options,  # type: ignore[arg-type]
    )


def count(session: Session, model: type) -> int:
    return session.scalar(select(func.count()).select_from(model))


def outcomes(report: ImportReport) -> list[tuple[int, str]]:
    return [(row.line, row.action) for row in report.rows]


EXPECTED = [
    (2, "create"),
    (3, "create"),
    (4, "refuse"),
    (6, "match"),
    (7, "create"),
    (8, "refuse"),
]


def test_a_dry_run_reports_each_line_and_writes_nothing(session: Session) -> None:
    report = run(session, PEOPLE, dry_run=True)

    assert outcomes(report) == EXPECTED
    by_line = {row.line: row for row in report.rows}
    assert by_line[2].detail == "new contact ada@engines.example, new customer 'Engines Ltd'"
    assert by_line[3].detail == (
        "new contact charles@engines.example, the new customer 'Engines Ltd' of line 2"
    )
    assert by_line[4].detail == "email: An email address must have an @-sign."
    assert by_line[6].detail == "the contact of line 2 by email, nothing new"
    assert by_line[8].detail == "body: a lead needs at least one of email or phone"
    assert report.summary == "6 rows: 3 would be created, 1 matched, 2 refused"
    assert (count(session, m.Contact), count(session, m.Customer)) == (0, 0)
    assert count(session, AuditEntry) == 0


def test_an_import_creates_what_the_dry_run_said_and_a_second_creates_nothing(
    session: Session,
) -> None:
    dry = run(session, PEOPLE, dry_run=True)
    first = run(session, PEOPLE)
    assert outcomes(first) == outcomes(dry) == EXPECTED
    assert first.summary == "6 rows: 3 were created, 1 matched, 2 refused"
    ada = session.scalars(
        select(m.Contact).where(m.Contact.email_normalized == "ada@engines.example")
    ).one()
    assert (ada.full_name, ada.phone, ada.attributes) == (
        "Ada Lovelace",
        "+442079460958",
        {"source": "fair"},
    )
    assert ada.customer.name == "Engines Ltd"
    assert (count(session, m.Contact), count(session, m.Customer)) == (3, 2)

    again = run(session, PEOPLE)
    assert [action for _, action in outcomes(again)] == [
        "match", "match", "refuse", "match", "match", "refuse",
    ]  # fmt: skip
    assert again.summary == "6 rows: 0 were created, 4 matched, 2 refused"
    assert (count(session, m.Contact), count(session, m.Customer)) == (3, 2)


def test_matching_fills_what_is_empty_and_never_overwrites(session: Session) -> None:
    known = ContactFactory(
        email="grace@navy.example", first_name="Grace", full_name="Grace Hopper", job_title=None
    )
    report = run(session, "email,first_name,job_title\ngrace@navy.example,Amazing,Rear admiral\n")
    [row] = report.rows
    assert (row.action, row.contact_id) == ("match", known.id)
    assert row.detail == f"contact {known.id} by email, fills job_title"
    assert (known.first_name, known.job_title) == ("Grace", "Rear admiral")


def test_writes_are_audited_under_the_operator(session: Session) -> None:
    run(session, PEOPLE)
    entries = session.scalars(select(AuditEntry).order_by(AuditEntry.id)).all()
    assert {e.actor for e in entries} == {"operator:importer"}
    assert sorted((e.entity, e.action) for e in entries) == sorted(
        [("customer", "create")] * 2 + [("contact", "create")] * 3
    )
    ada = next(e for e in entries if e.entity == "contact" and "phone" in e.changes)
    assert ada.changes["email"] == {"before": None, "after": "ada@engines.example"}


def test_small_batches_decide_as_one(session: Session) -> None:
    seen: list[int] = []
    report = run(session, PEOPLE, batch_size=2, progress=seen.append)
    assert outcomes(report) == EXPECTED
    assert seen == sorted(seen)
    assert seen[-1] == 6


def test_a_formula_guard_from_the_export_is_removed(session: Session) -> None:
    run(session, "email,full_name\nx@corp.example,'=Evil Corp\n")
    contact = session.scalars(select(m.Contact)).one()
    assert contact.full_name == "=Evil Corp"


def test_an_attributes_column_is_a_json_object(session: Session) -> None:
    text = 'email,attributes\na@corp.example,"{""tier"": 2}"\nb@corp.example,[1]\n'
    report = run(session, text)
    assert outcomes(report) == [(2, "create"), (3, "refuse")]
    assert report.rows[1].detail == "attributes: must be a JSON object"
    assert session.scalars(select(m.Contact.attributes)).one() == {"tier": 2}


def test_the_reader_gives_the_line_where_a_record_starts() -> None:
    text = 'email,full_name\na@corp.example,"Two\nlines"\nb@corp.example,B\n'
    assert [line for line, _ in read_rows(io.StringIO(text))] == [2, 4]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "the file is empty"),
        ("emial,first_name\nx@y.example,X\n", "unknown columns: emial; known: email, phone"),
        ("first_name,last_name\nAda,L\n", "the header needs an email or a phone column"),
        ("email,Email\na@b.example,a@b.example\n", "columns named twice: email"),
        ("email\na@b.example,extra\n", "line 2: 2 fields, the header names 1"),
        ('email\n"a@b.example"x\n', "line 2: not CSV: ',' expected after '\"'"),
    ],
)
def test_an_unreadable_file_is_one_error(session: Session, text: str, message: str) -> None:
    with pytest.raises(ImportFileError) as raised:
        run(session, text)
    assert message in str(raised.value)
    assert "\n" not in str(raised.value)


def test_importing_needs_the_write_permission(session: Session) -> None:
    reader = Actor.for_key(key_id=1, name="ro", scopes=["read"])
    with pytest.raises(PermissionDenied):
        import_contacts(
            session, read_rows(io.StringIO(PEOPLE)), actor=reader, free_domains=frozenset()
        )
