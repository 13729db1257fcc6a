"""The suppression list is idempotent and keeps the first reason."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from crm_core import models as m
from crm_core.bounces.suppression import is_suppressed, suppress


def test_suppressing_twice_keeps_one_row_and_the_first_reason(session: Session) -> None:
    assert not is_suppressed(session, email_normalized="gone@example.com")
    assert suppress(session, email_normalized="gone@example.com", reason="bounced", detail="5.1.1")
    assert not suppress(session, email_normalized="gone@example.com", reason="unsubscribed")
    row = session.scalars(select(m.Suppression)).one()
    assert (row.reason, row.detail) == ("bounced", "5.1.1")
    assert is_suppressed(session, email_normalized="gone@example.com")
