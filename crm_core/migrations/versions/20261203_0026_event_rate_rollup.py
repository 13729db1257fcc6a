"""event-rate rollup and SLA-breach indexes: inbox events counted per quarter hour, kind and
status, and partial indexes on the due times open cases still owe

Revision ID: 0026
Revises: 0025
Create Date: 2026-12-03 13:00:00.000000

``event_rate_buckets`` holds beat's counts of closed buckets (``crm_core.ops.rollup``) and
``rollup_watermarks`` up to when they are counted: the overview reads a day of rates from
them instead of grouping the whole day's inbox. The two partial indexes hold only the open
cases still owing a first response or a resolution, ordered by its due time (the second also
holds the first response's columns): the overview's count of cases past their SLA reads the
overdue slice of each, without the table. They are plain new indexes
(no table is rebuilt on SQLite); on PostgreSQL they are built ``CONCURRENTLY``, so a large
``support_cases`` keeps taking writes while they are.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import crm_core.db

revision: str = '0026'
down_revision: str | None = '0027'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_OPEN = "status IN ('new', 'open', 'pending')"
PARTIAL_INDEXES = {
    'ix_support_cases_open_first_response_due_at': (
        ['first_response_due_at'],
        f"{_OPEN} AND first_responded_at IS NULL",
    ),
    'ix_support_cases_open_resolution_due_at': (
        ['resolution_due_at', 'first_response_due_at', 'first_responded_at'],
        f"{_OPEN} AND resolved_at IS NULL",
    ),
}


def upgrade() -> None:
    op.create_table(
        'event_rate_buckets',
        sa.Column('bucket_start', crm_core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column('kind', sa.String(length=40), nullable=False),
        sa.Column('status', sa.String(length=40), nullable=False),
        sa.Column('count', sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint(
            'bucket_start', 'kind', 'status', name=op.f('pk_event_rate_buckets')
        ),
    )
    op.create_table(
        'rollup_watermarks',
        sa.Column('name', sa.String(length=40), nullable=False),
        sa.Column('counted_until', crm_core.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('name', name=op.f('pk_rollup_watermarks')),
    )
    _create_partial_indexes()


def downgrade() -> None:
    for name in PARTIAL_INDEXES:
        op.drop_index(name, table_name='support_cases')
    op.drop_table('rollup_watermarks')
    op.drop_table('event_rate_buckets')


def _create_partial_indexes() -> None:
    if op.get_bind().dialect.name == 'sqlite':
        for name, (columns, where) in PARTIAL_INDEXES.items():
            op.create_index(name, 'support_cases', columns, sqlite_where=sa.text(where))
        return
    with op.get_context().autocommit_block():
        for name, (columns, where) in PARTIAL_INDEXES.items():
            op.create_index(
                name,
                'support_cases',
                columns,
                postgresql_where=sa.text(where),
                postgresql_concurrently=True,
                if_not_exists=True,
            )
