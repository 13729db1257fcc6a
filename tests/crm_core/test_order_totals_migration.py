"""Migration 0015: existing orders keep their lines and total, which becomes the subtotal."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from crm_core import migrate
from crm_core.db import make_engine
from tests.services import scratch_postgres_database


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'totals.sqlite3'}"
        return
    request.getfixturevalue("postgres_available")
    with scratch_postgres_database("crm_totals") as url:
        yield url


SET_STATUS = text("UPDATE orders SET status = 'partially_refunded'")


def test_an_existing_order_s_total_becomes_its_subtotal(database: str) -> None:
    migrate.upgrade(database, revision="0014")
    engine = make_engine(database)
    now = dt.datetime(2026, 12, 1)
    try:
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO customers (id, kind, name, name_key, lifecycle_stage,"
                    " attributes, tags, created_at, updated_at) VALUES"
                    " (1, 'company', 'Acme', 'acme', 'customer', '{}', '[]', :now, :now)"
                ),
                {"now": now},
            )
            conn.execute(
                text(
                    "INSERT INTO products (id, sku, name, kind, active, created_at, updated_at)"
                    " VALUES (1, 'A', 'A', 'product', true, :now, :now)"
                ),
                {"now": now},
            )
            conn.execute(
                text(
                    "INSERT INTO orders (id, customer_id, order_number, status, currency, total,"
                    " ordered_at, created_at, updated_at)"
                    " VALUES (1, 1, 'A-1', 'paid', 'EUR', 20.20, :now, :now, :now)"
                ),
                {"now": now},
            )
            conn.execute(
                text(
                    "INSERT INTO order_lines (id, order_id, product_id, line_no, quantity,"
                    " unit_price, line_total) VALUES (1, 1, 1, 1, 2, 10.10, 20.20)"
                )
            )
        with pytest.raises(IntegrityError), engine.begin() as conn:
            conn.execute(SET_STATUS)
        migrate.upgrade(database, revision="0015")
        with engine.begin() as conn:
            row = conn.execute(
                text(
                    "SELECT subtotal, discount_total, tax_total, shipping_total, total FROM orders"
                )
            ).one()
            assert [Decimal(str(amount)) for amount in row] == [
                Decimal(amount) for amount in ("20.20", "0", "0", "0", "20.20")
            ]
            assert conn.execute(text("SELECT count(*) FROM order_lines")).scalar_one() == 1
            if conn.dialect.name == "sqlite":
                assert conn.exec_driver_sql("PRAGMA integrity_check").scalar_one() == "ok"
            conn.execute(SET_STATUS)
        migrate.downgrade(database, revision="0014")
        with engine.connect() as conn:
            assert conn.execute(text("SELECT status FROM orders")).scalar_one() == "paid"
            assert conn.execute(text("SELECT count(*) FROM order_lines")).scalar_one() == 1
    finally:
        engine.dispose()
