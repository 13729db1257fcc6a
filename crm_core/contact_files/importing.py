"""Importing contacts from a CSV file: each row is a lead, resolved by the lead rules.

A row is checked as a lead posted to the intake would be: a lead payload
(``parse_json_payload``) made the leads' command by ingestion's ``normalize_lead``
(``crm_core.ingestion.commands``). Then rows are resolved in batches by the one resolver
(``crm_core.leads.matching.resolve_contacts``): matched by e-mail, then phone, or
created with their company or person customer, and merged by the lead rule (fill
what is empty, never overwrite). So a second import of the same file creates
nothing, and an export imported back creates nothing either.

Every row gets an outcome with its line number: ``create``, ``match`` or ``refuse``
(with the reasons). A dry run resolves the same way inside a savepoint that it
rolls back, so its report is what the import would do. Writes are audited under
the acting operator. An import owes no notifications: it is not a lead capture
(``lead.created``) nor a person's edit (``contact.updated``).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Container, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TextIO

from sqlalchemy.orm import Session

from crm_core.contact_files.columns import (
    ATTRIBUTE_PREFIX,
    ATTRIBUTES,
    LEAD_COLUMNS,
    unescape_formula,
    unknown_columns,
)
from crm_core.customers.models import Contact
from crm_core.errors import FieldError, InvalidInput
from crm_core.ingestion.commands import normalize_lead
from crm_core.ingestion.validation import parse_json_payload
from crm_core.leads.contacts import retrying_on_conflict
from crm_core.leads.matching import ContactMatch, resolve_contacts
from crm_core.leads.normalize import NormalizedLead
from crm_core.payloads.json_body import JSON_TYPE
from crm_core.payloads.schemas import LeadPayload
from crm_core.people import audit
from crm_core.people.permissions import Actor, Permission

BATCH_SIZE = 500
# A CSV field longer than this is not a contact's: refuse the file rather than hold it.
MAX_FIELD_CHARS = 100_000


class ImportFileError(ValueError):
    """The file cannot be read as a contacts CSV at all; the message is one line."""


@dataclass(frozen=True)
class RowOutcome:
    """What became (or would become) of one row: ``create``, ``match`` or ``refuse``."""

    line: int
    action: str
    detail: str
    contact_id: int | None = None


@dataclass
class ImportReport:
    dry_run: bool
    rows: list[RowOutcome] = field(default_factory=list)

    def count(self, action: str) -> int:
        return sum(1 for row in self.rows if row.action == action)

    @property
    def summary(self) -> str:
        verb = "would be" if self.dry_run else "were"
        return (
            f"{len(self.rows)} rows: {self.count('create')} {verb} created, "
            f"{self.count('match')} matched, {self.count('refuse')} refused"
        )


def read_rows(stream: TextIO) -> Iterator[tuple[int, dict[str, str]]]:
    """``(line, row)`` for each record of a CSV with a header; ``ImportFileError`` if unreadable.

    The header is checked at once, before any row is asked for. ``line`` is where
    the record starts in the file (the header is line 1).
    """
    csv.field_size_limit(MAX_FIELD_CHARS)
    reader = csv.reader(stream, strict=True)
    with _reading(reader):
        header = next(reader, None)
    if not header or not any(name.strip() for name in header):
        raise ImportFileError("the file is empty: a header row naming the columns comes first")
    names = [name.strip().lower() for name in header]
    _check_header(names)
    return _records(reader, names)


def _records(reader: Any, names: list[str]) -> Iterator[tuple[int, dict[str, str]]]:
    start = reader.line_num + 1
    with _reading(reader):
        for record in reader:
            if any(value.strip() for value in record):
                if len(record) > len(names):
                    raise ImportFileError(
                        f"line {start}: {len(record)} fields, the header names {len(names)}"
                    )
                yield start, dict(zip(names, record, strict=False))
            start = reader.line_num + 1


@contextmanager
def _reading(reader: Any) -> Iterator[None]:
    """What the csv module or the decoder raise, as one line naming where."""
    try:
        yield
    except csv.Error as exc:
        raise ImportFileError(f"line {reader.line_num}: not CSV: {exc}") from None
    except UnicodeDecodeError:
        raise ImportFileError(f"near line {reader.line_num + 1}: not UTF-8 text") from None


def _check_header(names: list[str]) -> None:
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise ImportFileError(f"columns named twice: {', '.join(duplicates)}")
    unknown = unknown_columns(names)
    if unknown:
        raise ImportFileError(
            f"unknown columns: {', '.join(unknown)}; known: {', '.join(LEAD_COLUMNS)},"
            f" {ATTRIBUTES} (a JSON object) and {ATTRIBUTE_PREFIX}NAME"
        )
    if "email" not in names and "phone" not in names:
        raise ImportFileError("the header needs an email or a phone column")


def parse_row(row: dict[str, str], *, default_region: str | None) -> NormalizedLead:
    """A row as a normalized lead, checked as the intake checks one; ``InvalidInput`` if not."""
    document: dict[str, Any] = {
        name: unescape_formula(row[name].strip())
        for name in LEAD_COLUMNS
        if (row.get(name) or "").strip()
    }
    attributes = _attributes(row)
    if attributes:
        document["attributes"] = attributes
    body = json.dumps(document).encode()
    payload = parse_json_payload("leads", LeadPayload, body, JSON_TYPE, max_depth=8)
    return normalize_lead(payload, default_region=default_region)


def _attributes(row: dict[str, str]) -> dict[str, Any]:
    attributes: dict[str, Any] = {}
    raw = (row.get(ATTRIBUTES) or "").strip()
    if raw:
        try:
            attributes = json.loads(raw)
        except ValueError:
            attributes = None  # type: ignore[assignment]
        if not isinstance(attributes, dict):
            raise InvalidInput([FieldError((ATTRIBUTES,), "must be a JSON object")])
    for name, value in row.items():
        if name.startswith(ATTRIBUTE_PREFIX) and value.strip():
            attributes[name.removeprefix(ATTRIBUTE_PREFIX)] = value.strip()
    return attributes


def import_contacts(
    session: Session,
    rows: Iterable[tuple[int, dict[str, str]]],
    *,
    actor: Actor,
    free_domains: Container[str],
    default_region: str | None = None,
    dry_run: bool = False,
    progress: Callable[[int], None] | None = None,
    batch_size: int = BATCH_SIZE,
) -> ImportReport:
    """Create or match a contact for each row, in order; the report of every row.

    ``progress`` is called with the number of rows done after each batch.
    """
    actor.require(Permission.WRITE)
    report = ImportReport(dry_run=dry_run)
    run = _Import(session, actor=actor, free_domains=free_domains, report=report)
    savepoint = session.begin_nested() if dry_run else None
    try:
        batch: list[tuple[int, NormalizedLead]] = []
        for line, row in rows:
            try:
                batch.append((line, parse_row(row, default_region=default_region)))
            except InvalidInput as exc:
                report.rows.append(RowOutcome(line, "refuse", _reasons(exc)))
            if len(batch) >= batch_size:
                run.resolve(batch)
                batch = []
                if progress is not None:
                    progress(len(report.rows))
        run.resolve(batch)
        if progress is not None:
            progress(len(report.rows))
    finally:
        if savepoint is not None:
            savepoint.rollback()
    report.rows.sort(key=lambda outcome: outcome.line)
    return report


def _reasons(exc: InvalidInput) -> str:
    return "; ".join(f"{e.field}: {e.msg.removeprefix('Value error, ')}" for e in exc.errors)


class _Import:
    """One import's state: what it created so far."""

    def __init__(
        self, session: Session, *, actor: Actor, free_domains: Container[str], report: ImportReport
    ) -> None:
        self.session = session
        self.actor = actor
        self.free_domains = free_domains
        self.report = report
        # What this import created, by id: the line that created it (a dry run's ids are
        # rolled back, so the report names the line instead).
        self.created_by_line: dict[int, int] = {}
        self.customer_by_line: dict[int, int] = {}

    def resolve(self, batch: list[tuple[int, NormalizedLead]]) -> None:
        if not batch:
            return
        leads = [lead for _, lead in batch]
        matches = retrying_on_conflict(
            self.session,
            lambda: resolve_contacts(self.session, leads, free_domains=self.free_domains),
        )
        for (line, _), match in zip(batch, matches, strict=True):
            self.report.rows.append(self._outcome(line, match))
            self._audit(match)

    def _outcome(self, line: int, match: ContactMatch) -> RowOutcome:
        contact, customer = match.contact, match.customer
        who = contact.email or contact.phone or contact.phone_raw or f"contact {contact.id}"
        dry = self.report.dry_run
        if match.created_contact:
            self.created_by_line[contact.id] = line
            if match.created_customer:
                self.customer_by_line[customer.id] = line
                joins = f"new customer {customer.name!r}"
            elif customer.id in self.customer_by_line:
                first = self.customer_by_line[customer.id]
                joins = f"the new customer {customer.name!r} of line {first}"
            else:
                joins = f"customer {customer.id} {customer.name!r}"
            return RowOutcome(
                line, "create", f"new contact {who}, {joins}", None if dry else contact.id
            )
        earlier = self.created_by_line.get(contact.id)
        same = f"the contact of line {earlier}" if earlier else f"contact {contact.id}"
        fills = [name for name in match.changes if name != "email_normalized"]
        detail = f"{same} by {match.matched_by}" + (
            f", fills {', '.join(fills)}" if fills else ", nothing new"
        )
        return RowOutcome(line, "match", detail, None if dry and earlier else contact.id)

    def _audit(self, match: ContactMatch) -> None:
        if self.report.dry_run:
            return
        if match.created_customer:
            audit.record(
                self.session,
                actor=self.actor,
                entity="customer",
                entity_id=match.customer.id,
                action="create",
                changes=audit.created({"name": match.customer.name, "kind": match.customer.kind}),
            )
        if match.changes or match.created_contact:
            audit.record(
                self.session,
                actor=self.actor,
                entity="contact",
                entity_id=match.contact.id,
                action="create" if match.created_contact else "update",
                changes=_audit_changes(match),
            )


def _audit_changes(match: ContactMatch) -> dict[str, dict[str, Any]]:
    """The resolver's ``{field: {"from", "to"}}`` as the audit log's before and after."""
    contact: Contact = match.contact
    changes = {
        name: {"before": change["from"], "after": change["to"]}
        for name, change in match.changes.items()
        if name != "email_normalized"
    }
    if match.created_contact:
        changes["customer_id"] = {"before": None, "after": contact.customer_id}
        changes["is_primary"] = {"before": None, "after": contact.is_primary}
    return audit.changes_between(
        {name: change["before"] for name, change in changes.items()},
        {name: change["after"] for name, change in changes.items()},
    )
