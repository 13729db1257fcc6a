"""Exporting contacts as CSV or NDJSON, streamed: memory stays flat whatever their number.

Contacts are read in pages by id (keyset paging: ``WHERE id > last ORDER BY id
LIMIT n``, never OFFSET). Each page is read in a short transaction of its own,
closed before the page is handed on, so a slow reader of the export holds no
transaction open: on SQLite, where every transaction takes the write lock, a
long export would otherwise stop every writer. The export is therefore not one
snapshot: a contact created while it runs may or may not be in it. The columns are
``columns.EXPORT_COLUMNS``, the contact's marketing consent among them; an import of
the file reads the lead fields back and skips the rest (consent included), so exporting
and importing again creates nothing.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from crm_core.base.serialize import plain
from crm_core.contact_files.columns import EXPORT_COLUMNS, escape_formula
from crm_core.customers.models import Contact, Customer, CustomerKind

FORMATS = {"csv": "text/csv; charset=utf-8", "ndjson": "application/x-ndjson"}
PAGE_SIZE = 500


def contact_pages(
    sessions: sessionmaker[Session], *, page_size: int | None = None
) -> Iterator[list[dict[str, Any]]]:
    """Every contact as a dict of the export columns, by id: a list per page, each page
    read in its own transaction, closed before the page is yielded."""
    size = page_size or PAGE_SIZE
    last_id = 0
    while True:
        with sessions() as session:
            page = [
                _row(contact, name if kind == CustomerKind.COMPANY else None)
                for contact, name, kind in session.execute(
                    select(Contact, Customer.name, Customer.kind)
                    .join(Customer, Customer.id == Contact.customer_id)
                    .where(Contact.id > last_id)
                    .order_by(Contact.id)
                    .limit(size)
                )
            ]
        if page:
            yield page
        if len(page) < size:
            return
        last_id = page[-1]["id"]


def _row(contact: Contact, company: str | None) -> dict[str, Any]:
    return {
        "id": contact.id,
        "customer_id": contact.customer_id,
        "email": contact.email,
        "phone": contact.phone or contact.phone_raw,
        "first_name": contact.first_name,
        "last_name": contact.last_name,
        "full_name": contact.full_name,
        "company": company,
        "job_title": contact.job_title,
        "country": contact.country,
        "is_primary": contact.is_primary,
        "tags": list(contact.tags or []),
        "attributes": dict(contact.attributes or {}),
        "marketing_consent": contact.marketing_consent,
        "marketing_consent_at": plain(contact.marketing_consent_at),
        "marketing_consent_source_id": contact.marketing_consent_source_id,
        "marketing_consent_method": contact.marketing_consent_method,
        "created_at": plain(contact.created_at),
        "updated_at": plain(contact.updated_at),
    }


def export_contacts(sessions: sessionmaker[Session], *, format: str) -> Iterator[str]:
    """The export as chunks of text, one page of contacts each; ``ValueError`` for a format
    other than ``csv`` or ``ndjson`` (raised at once, before anything is read)."""
    if format not in FORMATS:
        raise ValueError(f"unknown format {format!r}: choose csv or ndjson")
    pages = contact_pages(sessions)
    return _csv(pages) if format == "csv" else _ndjson(pages)


def _ndjson(pages: Iterator[list[dict[str, Any]]]) -> Iterator[str]:
    for page in pages:
        yield "".join(
            json.dumps(row, ensure_ascii=False, separators=(",", ":")) + "\n" for row in page
        )


def _csv(pages: Iterator[list[dict[str, Any]]]) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=EXPORT_COLUMNS, lineterminator="\n")
    writer.writeheader()
    yield buffer.getvalue()
    for page in pages:
        buffer.seek(0)
        buffer.truncate()
        writer.writerows({name: _cell(value) for name, value in row.items()} for row in page)
        yield buffer.getvalue()


def _cell(value: Any) -> Any:
    """A CSV cell: lists and objects as JSON, booleans as ``true``/``false``, null as empty.

    Text a spreadsheet would run as a formula (``=``, ``+``, ``-``, ``@``, tab, CR
    first: names come from public forms) gets a ``'`` in front, which the import removes.
    """
    if isinstance(value, list | dict):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":")) if value else ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return escape_formula(value)
    return "" if value is None else value
