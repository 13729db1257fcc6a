"""Erasure: a person's data removed from every row that holds it, at their request.

``erase_person`` gathers the subject (``crm_core.privacy.subjects``), then runs
``ERASURE_STEPS`` in order, each a small function over one kind of row that says how many
rows it changed, all in the caller's one transaction, and records the erasure in the audit
log with those counts and no data. A new store of personal data adds one step (a function
of ``Erasure``) to the list, or passes it as ``extra_steps``.

What stays, and why (docs/operations/personal-data.md): the rows other records point at
(the contact and a person customer as emptied tombstones, cases, deals, orders, agreements,
activities, inbox events with their metadata), so the books and the counts still add up;
an erased address's keyed hash on the suppression list, so no campaign mails it again.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from crm_core.base.entities import EntityType
from crm_core.db import utcnow
from crm_core.people import audit
from crm_core.people.permissions import Actor, Permission
from crm_core.privacy.steps import ERASURE_STEPS, Erasure, Step
from crm_core.privacy.subjects import find_contact, gather

__all__ = ["ERASURE_STEPS", "ErasureReport", "erase_person", "reclaim_sqlite_space"]


@dataclass(frozen=True)
class ErasureReport:
    """What an erasure did: rows changed per step; ``already`` when it had been done before."""

    contact_id: int
    steps: dict[str, int]
    already: dt.datetime | None = None


def erase_person(
    session: Session,
    *,
    actor: Actor,
    secret_key: str,
    contact_id: int | None = None,
    email: str | None = None,
    now: dt.datetime | None = None,
    extra_steps: Iterable[tuple[str, Step]] = (),
) -> ErasureReport:
    """Erase the person of ``contact_id`` (or ``email``) everywhere; the caller commits.

    ``SubjectNotFound`` when there is no such contact; erasing an erased contact again
    changes nothing and reports when it was done.
    """
    actor.require(Permission.PERSONAL_DATA)
    contact = find_contact(session, contact_id=contact_id, email=email)
    if contact.erased_at is not None:
        return ErasureReport(contact_id=contact.id, steps={}, already=contact.erased_at)
    erasure = Erasure(session, gather(session, contact), now or utcnow(), secret_key)
    steps = {name: step(erasure) for name, step in (*ERASURE_STEPS, *extra_steps)}
    session.flush()
    audit.record(
        session,
        actor=actor,
        entity=EntityType.CONTACT.value,
        entity_id=contact.id,
        action="erase",
        # The counts, never the data.
        changes={"erased": {"before": None, "after": steps}},
        now=erasure.now,
    )
    return ErasureReport(contact_id=contact.id, steps=steps)


def reclaim_sqlite_space(engine: Engine) -> bool:
    """After an erasure has committed, on SQLite: rebuild the file and empty the write-ahead log;
    whether it was done.

    SQLite leaves overwritten and deleted rows in free pages and in the log until they are
    reused, so the file's bytes would still hold the person; ``VACUUM`` writes only the live
    rows, and a truncating checkpoint empties the log. It holds the write lock for as long as
    the rebuild takes (a second or so for a small database). False elsewhere: PostgreSQL's
    dead rows are not visible to any query or dump and are reclaimed by autovacuum.
    """
    if engine.dialect.name != "sqlite":
        return False
    raw = engine.raw_connection()
    try:
        # Outside any transaction: the driver connection is in autocommit mode.
        raw.driver_connection.execute("VACUUM")  # type: ignore[union-attr]
        raw.driver_connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # type: ignore[union-attr]
    except sqlite3.OperationalError:
        # Another process held the database past the busy timeout: the erasure stands, the
        # old bytes stay in free pages until a later VACUUM.
        return False
    finally:
        raw.close()
    return True
