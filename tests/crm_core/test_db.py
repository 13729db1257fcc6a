"""Engines as make_engine builds them: what their errors may say."""

from __future__ import annotations

import pytest
from sqlalchemy import insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from crm_core.models import Product

MARKER = "ann.private@customer.example"


def test_a_database_error_does_not_quote_the_statements_values(session: Session) -> None:
    row = {"sku": "SKU-DUP", "name": MARKER, "currency": "EUR"}
    session.execute(insert(Product).values(row))
    with pytest.raises(IntegrityError) as caught:
        session.execute(insert(Product).values(row))
    assert MARKER not in str(caught.value)
    assert "hidden" in str(caught.value)
