"""support cases keep when the help desk opened them and last changed them; deals keep the
sender's last change; orders keep what has been refunded

Revision ID: 0018
Revises: 0015
Create Date: 2026-12-03 08:30:00.000000

Only nullable or defaulted columns are added, so no table is rebuilt on SQLite
(see 0014). An existing case was opened when it was created here, which is
what its SLA clock has measured so far.
"""

from collections.abc import Sequence

import sqlalchemy as sa

import crm_core.db
from alembic import op


revision: str = '0018'
down_revision: str | None = '0017'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ADDED = (
    ('support_cases', 'opened_at'),
    ('support_cases', 'source_updated_at'),
    ('opportunities', 'source_updated_at'),
)


def upgrade() -> None:
    for table, name in ADDED:
        op.add_column(table, sa.Column(name, crm_core.db.UTCDateTime(timezone=True), nullable=True))
    op.add_column(
        'orders',
        sa.Column('refunded_total', sa.Numeric(precision=14, scale=2), server_default='0', nullable=False),
    )
    op.execute("UPDATE support_cases SET opened_at = created_at")


def downgrade() -> None:
    for table, name in (('orders', 'refunded_total'), *reversed(ADDED)):
        if op.get_bind().dialect.name == 'sqlite':
            op.execute(f"ALTER TABLE {table} DROP COLUMN {name}")
        else:
            op.drop_column(table, name)
