"""personal data: erased contacts and customers, inbox bodies removed by retention or erasure,
erased addresses on the suppression list, and a partial index for the inbox's retention

Revision ID: 0025
Revises: 0019
Create Date: 2026-12-03 11:30:00.000000

Only columns are added to existing tables (no table is rebuilt on SQLite, see 0019), and the
suppression list's reason CHECK is widened in place on SQLite, as 0017 does.

The partial index holds only the rows the retention task looks for (finished events whose
body is still kept), so a batch costs the same however large the inbox grows. The sweeper
needs none: the full ``(status, …)`` indexes of 0001 already find its small backlog in constant
time (measured, docs/operations/scale.md). On PostgreSQL the index is built ``CONCURRENTLY``:
a large inbox keeps taking webhooks while it is.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from crm_core.migrate import sqlite_replace_in_schema

revision: str = '0025'
down_revision: str | None = '0019'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TIME = sa.DateTime(timezone=True)
REASONS = "'unsubscribed', 'bounced', 'complained', 'manual'"
WITH_ERASED = f"{REASONS}, 'erased'"
PARTIAL_INDEXES = {
    'ix_inbox_events_body_kept_received_at': (
        'received_at',
        "status IN ('processed', 'ignored') AND body_removed_at IS NULL",
    ),
}


def upgrade() -> None:
    op.add_column('contacts', sa.Column('erased_at', _TIME, nullable=True))
    op.add_column('customers', sa.Column('erased_at', _TIME, nullable=True))
    op.add_column('inbox_events', sa.Column('body_removed_at', _TIME, nullable=True))
    op.add_column('inbox_events', sa.Column('body_removed_by', sa.String(40), nullable=True))
    _widen(f"reason IN ({REASONS})", f"reason IN ({WITH_ERASED})")
    _create_partial_indexes()


def downgrade() -> None:
    for name in PARTIAL_INDEXES:
        op.drop_index(name, table_name='inbox_events')
    # An erased address's hash is not an address: without the reason it cannot stay.
    op.execute("DELETE FROM suppressions WHERE reason = 'erased'")
    _widen(f"reason IN ({WITH_ERASED})", f"reason IN ({REASONS})")
    for table, column in (
        ('inbox_events', 'body_removed_by'),
        ('inbox_events', 'body_removed_at'),
        ('customers', 'erased_at'),
        ('contacts', 'erased_at'),
    ):
        if op.get_bind().dialect.name == 'sqlite':
            op.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
        else:
            op.drop_column(table, column)


def _create_partial_indexes() -> None:
    if op.get_bind().dialect.name == 'sqlite':
        for name, (column, where) in PARTIAL_INDEXES.items():
            op.create_index(name, 'inbox_events', [column], sqlite_where=sa.text(where))
        return
    with op.get_context().autocommit_block():
        for name, (column, where) in PARTIAL_INDEXES.items():
            op.create_index(
                name,
                'inbox_events',
                [column],
                postgresql_where=sa.text(where),
                postgresql_concurrently=True,
                if_not_exists=True,
            )


def _widen(old: str, new: str) -> None:
    if op.get_bind().dialect.name == 'sqlite':
        sqlite_replace_in_schema(op.get_bind(), 'suppressions', old, new)
        return
    name = op.f('ck_suppressions_reason_allowed')
    op.drop_constraint(name, 'suppressions', type_='check')
    op.create_check_constraint(name, 'suppressions', new)
