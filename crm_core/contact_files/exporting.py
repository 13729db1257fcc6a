"""Exporting contacts as CSV or NDJSON, streamed: memory stays flat whatever their number.

Contacts are read in pages by id (keyset paging: ``WHERE id > last ORDER BY id
LIMIT n``, never OFFSET), each page turned into text and yielded before the next
is read. The columns are ``columns.EXPORT_COLUMNS``; an import of the file reads
the lead fields back and skips the rest, so exporting and importing again creates
nothing.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from crm_core.contact_files.columns import EXPORT_COLUMNS, escape_formula
from crm_core.customers.models import Contact, Customer, CustomerKind
from crm_core.readapi.serialize import plain

FORMATS = {"csv": "text/csv; charset=utf-8", "ndjson": "application/x-ndjson"}
PAGE_SIZE = 500


def contact_rows(session: Session, *, page_size: int | None = None) -> Iterator[dict[str, Any]]:
    """Every contact as a dict of the export columns, by id, one page of rows read at a time."""
    page_size = page_size or PAGE_SIZE
    last_id = 0
    while True:
        page = session.execute(
            select(Contact, Customer.name, Customer.kind)
            .join(Customer, Customer.id == Contact.customer_id)
            .where(Contact.id > last_id)
            .order_by(Contact.id)
            .limit(page_size)
        ).all()
        for contact, customer_name, customer_kind in page:
            yield _row(contact, customer_name if customer_kind == CustomerKind.COMPANY else None)
            last_id = contact.id
            # Done with: the session's identity map must not keep every contact.
            session.expunge(contact)
        if len(page) < page_size:
            return


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
        "created_at": plain(contact.created_at),
        "updated_at": plain(contact.updated_at),
    }


def export_contacts(session: Session, *, format: str) -> Iterator[str]:
    """The export as chunks of text, one page of contacts each; ``ValueError`` for a format
    other than ``csv`` or ``ndjson``."""
    if format not in FORMATS:
        raise ValueError(f"unknown format {format!r}: choose csv or ndjson")
    rows = contact_rows(session)
    return _csv(rows) if format == "csv" else _ndjson(rows)


def _ndjson(rows: Iterator[dict[str, Any]]) -> Iterator[str]:
    lines: list[str] = []
    for row in rows:
        lines.append(json.dumps(row, ensure_ascii=False, separators=(",", ":")) + "\n")
        if len(lines) >= PAGE_SIZE:
            yield "".join(lines)
            lines = []
    if lines:
        yield "".join(lines)


def _csv(rows: Iterator[dict[str, Any]]) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=EXPORT_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for count, row in enumerate(rows, start=1):
        writer.writerow({name: _cell(value) for name, value in row.items()})
        if count % PAGE_SIZE == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
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
