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

import re
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from crm_core.migrate import sqlite_replace_in_schema

revision: str = '0025'
down_revision: str | None = '0023'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TIME = sa.DateTime(timezone=True)
ERASED = 'erased'
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
    reasons = _reasons()
    if ERASED not in reasons:
        _replace_reasons(reasons, [*reasons, ERASED])
    _create_partial_indexes()


def downgrade() -> None:
    for name in PARTIAL_INDEXES:
        op.drop_index(name, table_name='inbox_events')
    # An erased address's hash is not an address: without the reason it cannot stay.
    op.execute("DELETE FROM suppressions WHERE reason = 'erased'")
    reasons = _reasons()
    if ERASED in reasons:
        _replace_reasons(reasons, [r for r in reasons if r != ERASED])
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


def _in(values: list[str]) -> str:
    return "reason IN (" + ", ".join(f"'{v}'" for v in values) + ")"


def _reasons() -> list[str]:
    """The values the suppressions' reason CHECK allows now (whatever an earlier migration made
    of it), in their order."""
    bind = op.get_bind()
    if bind.dialect.name == 'sqlite':
        sql = bind.execute(
            sa.text("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'suppressions'")
        ).scalar_one()
        found = re.search(r"ck_suppressions_reason_allowed CHECK \(reason IN \(([^)]*)\)\)", sql)
    else:
        definition = bind.execute(
            sa.text(
                "SELECT pg_get_constraintdef(oid) FROM pg_constraint"
                " WHERE conname = 'ck_suppressions_reason_allowed'"
            )
        ).scalar_one()
        found = re.search(r"(.*)", definition)
    assert found is not None, "suppressions has no reason CHECK"
    return re.findall(r"'([a-z_]+)'", found.group(1))


def _replace_reasons(old: list[str], new: list[str]) -> None:
    bind = op.get_bind()
    if bind.dialect.name == 'sqlite':
        sqlite_replace_in_schema(bind, 'suppressions', _in(old), _in(new))
        return
    name = op.f('ck_suppressions_reason_allowed')
    op.drop_constraint(name, 'suppressions', type_='check')
    op.create_check_constraint(name, 'suppressions', _in(new))
