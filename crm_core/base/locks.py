"""Transaction-scoped locks on identities that no unique constraint guards.

A contact's e-mail and a company's domain are unique columns, so a race on
them ends in a conflict the caller retries. A phone number or a company name
is not unique (two people may share an office line), so two transactions
creating "Acme Ltd" at once would both succeed. On PostgreSQL they first take
an advisory lock on the identity, held until the transaction ends, and the
second one then finds what the first created. SQLite needs none: its writers
take the database lock at ``BEGIN IMMEDIATE``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session


def advisory_key(identity: str) -> int:
    """A stable signed 64-bit key for ``identity`` (PostgreSQL's advisory lock space)."""
    digest = hashlib.blake2b(identity.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def lock_identities(session: Session, identities: Iterable[str]) -> None:
    """Hold a lock on each identity until the transaction ends (PostgreSQL only).

    Keys are taken in sorted order, all in one statement, so two transactions
    never wait on each other in a cycle. Take them outside any savepoint:
    rolling back to a savepoint releases the locks taken after it.
    """
    if session.get_bind().dialect.name != "postgresql":
        return
    keys = sorted({advisory_key(identity) for identity in identities})
    if len(keys) == 1:
        session.execute(select(func.pg_advisory_xact_lock(keys[0])))
    elif keys:
        session.execute(_LOCK_MANY, {"keys": keys})


# The sorted keys, locked one after the other in array order.
_LOCK_MANY = text(
    "SELECT count(pg_advisory_xact_lock(k)) FROM ("
    " SELECT k FROM unnest(CAST(:keys AS bigint[])) WITH ORDINALITY AS u(k, n) ORDER BY n"
    ") AS ordered"
)
