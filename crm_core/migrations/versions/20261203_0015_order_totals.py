"""orders carry subtotal, discounts, tax, shipping and the sender's last change; partly refunded
orders; order status and stale update activities

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-03 07:10:00.000000

An existing order's total was the sum of its lines: that is its subtotal, with
no discount, tax or shipping. On SQLite no table is rebuilt (rebuilding
``orders`` would cascade its lines away, see 0014): the columns are added with
their defaults and the widened CHECKs are edited in the stored schema.
"""

from collections.abc import Sequence

import sqlalchemy as sa

import crm_core.db
from alembic import op

from crm_core.migrate import sqlite_replace_in_schema


revision: str = '0015'
down_revision: str | None = '0014'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

AMOUNTS = ('subtotal', 'discount_total', 'tax_total', 'shipping_total')
STATUSES = ['placed', 'paid', 'fulfilled', 'cancelled', 'refunded']
NEW_STATUS = 'partially_refunded'
TYPES = [
    'lead_captured', 'email_received', 'email_sent', 'call', 'meeting', 'note', 'case_opened',
    'case_status_changed', 'case_comment', 'case_escalated', 'order_placed',
    'deal_stage_changed', 'agreement_signed', 'campaign_sent', 'unsubscribed', 'followup_due',
    'bounce_unverified', 'suppression_removed',
]
NEW_TYPES = ['order_status_changed', 'stale_update']


def _in(column: str, values: list[str]) -> str:
    return f"{column} IN (" + ", ".join(f"'{v}'" for v in values) + ")"


def upgrade() -> None:
    for name in AMOUNTS:
        op.add_column(
            'orders',
            sa.Column(name, sa.Numeric(precision=14, scale=2), server_default='0', nullable=False),
        )
    op.add_column('orders', sa.Column('source_updated_at', crm_core.db.UTCDateTime(timezone=True), nullable=True))
    op.execute("UPDATE orders SET subtotal = total")
    _widen('orders', 'status', STATUSES, STATUSES + [NEW_STATUS])
    _widen('activities', 'type', TYPES, TYPES + NEW_TYPES)


def downgrade() -> None:
    op.execute("DELETE FROM activities WHERE type IN ('order_status_changed', 'stale_update')")
    # Partly refunded is the nearest the older schema can say: the order was paid.
    op.execute(f"UPDATE orders SET status = 'paid' WHERE status = '{NEW_STATUS}'")
    _widen('activities', 'type', TYPES + NEW_TYPES, TYPES)
    _widen('orders', 'status', STATUSES + [NEW_STATUS], STATUSES)
    for name in ('source_updated_at', *reversed(AMOUNTS)):
        if op.get_bind().dialect.name == 'sqlite':
            op.execute(f"ALTER TABLE orders DROP COLUMN {name}")
        else:
            op.drop_column('orders', name)


def _widen(table: str, column: str, old: list[str], new: list[str]) -> None:
    """Replace the CHECK keeping ``column`` within ``old`` by one within ``new``."""
    if op.get_bind().dialect.name == 'sqlite':
        sqlite_replace_in_schema(op.get_bind(), table, _in(column, old), _in(column, new))
        return
    name = op.f(f'ck_{table}_{column}_allowed')
    op.drop_constraint(name, table, type_='check')
    op.create_check_constraint(name, table, _in(column, new))

