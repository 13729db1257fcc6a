"""The audit entry commits with the write, and disappears with it when the write rolls back."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, func, select

from crm_core.customers.models import Customer
from crm_core.db import make_session_factory
from crm_core.editing import customers
from crm_core.people.models import AuditEntry
from crm_core.people.permissions import Actor

AGENT = Actor.for_user(user_id=1, email="agent@example.com", role="agent")
NEW = {"name": "Acme", "primary_contact": {"first_name": "Ada"}}


def _counts(engine: Engine) -> tuple[int, int]:
    with make_session_factory(engine)() as session:
        return (
            session.scalar(select(func.count()).select_from(Customer)) or 0,
            session.scalar(select(func.count()).select_from(AuditEntry)) or 0,
        )


def test_a_committed_write_has_its_audit_entries(committed_db: Engine) -> None:
    with make_session_factory(committed_db).begin() as session:
        customers.create_customer(session, actor=AGENT, document=NEW)
    assert _counts(committed_db) == (1, 2)  # the customer and its primary contact


def test_a_write_that_rolls_back_leaves_no_audit_entry(committed_db: Engine) -> None:
    seen_inside: list[int] = []

    def failing_request() -> None:
        with make_session_factory(committed_db).begin() as session:
            customers.create_customer(session, actor=AGENT, document=NEW)
            seen_inside.append(session.scalar(select(func.count()).select_from(AuditEntry)) or 0)
            raise RuntimeError("the request failed after the write")

    with pytest.raises(RuntimeError):
        failing_request()
    # In the transaction the entries were there with the write; both are gone together.
    assert seen_inside == [2]
    assert _counts(committed_db) == (0, 0)
