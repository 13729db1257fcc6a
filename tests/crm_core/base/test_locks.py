"""lock_identities on PostgreSQL: every key held until the transaction ends."""

from __future__ import annotations

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from crm_core.base.locks import advisory_key, lock_identities


def held_elsewhere(engine: Engine, identity: str) -> bool:
    with engine.connect() as other:
        free = other.scalar(select(func.pg_try_advisory_xact_lock(advisory_key(identity))))
        other.rollback()
    return not free


def test_every_identity_is_locked_until_the_transaction_ends(postgres_committed: Engine) -> None:
    identities = ["contact-email:a@example.org", "company-domain:example.org", "deal:1:pilot"]
    with Session(postgres_committed) as session:
        lock_identities(session, identities)
        assert [held_elsewhere(postgres_committed, i) for i in identities] == [True] * 3
        assert not held_elsewhere(postgres_committed, "contact-email:b@example.org")
        lock_identities(session, ["company-name:acme"])  # one key: the single-lock statement
        assert held_elsewhere(postgres_committed, "company-name:acme")
        session.commit()
    assert [held_elsewhere(postgres_committed, i) for i in identities] == [False] * 3


def test_no_identities_run_no_statement(postgres_committed: Engine) -> None:
    with Session(postgres_committed) as session:
        lock_identities(session, [])
        assert not session.in_transaction()
