"""The audit log: every write records who, when, what, and each changed field before and after.

``record`` adds the entry to the session of the write, so it commits or rolls back with it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from sqlalchemy import select, tuple_
from sqlalchemy.orm import Session

from crm_core.base.pagination import Page, cursor_time, decode_cursor, encode_cursor
from crm_core.base.serialize import plain
from crm_core.db import utcnow
from crm_core.people.models import AuditEntry
from crm_core.people.permissions import Actor, Permission

REDACTED = "<redacted>"


def changes_between(
    before: Mapping[str, Any], after: Mapping[str, Any]
) -> dict[str, dict[str, Any]]:
    """``{field: {"before": …, "after": …}}`` for each field whose value differs."""
    fields = [*before, *(k for k in after if k not in before)]
    return {
        name: {"before": plain(before.get(name)), "after": plain(after.get(name))}
        for name in fields
        if before.get(name) != after.get(name)
    }


def created(values: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The changes of a creation: each field given a value, from nothing."""
    return changes_between({}, {k: v for k, v in values.items() if v not in (None, [], {})})


def removed(values: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The changes of a deletion: each field that had a value, to nothing."""
    return changes_between({k: v for k, v in values.items() if v not in (None, [], {})}, {})


def record(
    session: Session,
    *,
    actor: Actor,
    entity: str,
    entity_id: int,
    action: str,
    changes: Mapping[str, Any],
    now: dt.datetime | None = None,
) -> AuditEntry:
    """Add an audit entry for a write to ``session`` (the write's own transaction)."""
    entry = AuditEntry(
        occurred_at=now or utcnow(),
        actor=actor.label,
        actor_kind=actor.kind,
        entity=entity,
        entity_id=entity_id,
        action=action,
        changes=dict(changes),
    )
    session.add(entry)
    return entry


def entry_dict(entry: AuditEntry) -> dict[str, Any]:
    return {
        "id": entry.id,
        "occurred_at": entry.occurred_at.isoformat(),
        "actor": entry.actor,
        "actor_kind": entry.actor_kind,
        "entity": entry.entity,
        "entity_id": entry.entity_id,
        "action": entry.action,
        "changes": entry.changes,
    }


def list_entries(
    session: Session,
    *,
    actor: Actor,
    entity: str | None = None,
    entity_id: int | None = None,
    by: str | None = None,
    since: dt.datetime | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> Page:
    """Audit entries, newest first, filtered by entity (and id), acting label and time."""
    actor.require(Permission.AUDIT)
    query = select(AuditEntry).order_by(AuditEntry.occurred_at.desc(), AuditEntry.id.desc())
    if entity is not None:
        query = query.where(AuditEntry.entity == entity)
    if entity_id is not None:
        query = query.where(AuditEntry.entity_id == entity_id)
    if by is not None:
        query = query.where(AuditEntry.actor == by)
    if since is not None:
        query = query.where(AuditEntry.occurred_at >= since)
    after = decode_cursor(cursor, length=2)
    if after is not None:
        moment = cursor_time(after[0])
        query = query.where(
            tuple_(AuditEntry.occurred_at, AuditEntry.id) < tuple_(moment, after[1])
        )
    rows = list(session.scalars(query.limit(limit + 1)))
    more, rows = len(rows) > limit, rows[:limit]
    last = rows[-1] if rows else None
    return Page(
        items=[entry_dict(e) for e in rows],
        next=encode_cursor([last.occurred_at.isoformat(), last.id]) if more and last else None,
    )
