"""indexes for counting campaign sends: when each address was suppressed, the messages a
delivery report marked, and the sends not yet sent

Revision ID: 0028
Revises: 0026
Create Date: 2026-12-03 14:30:00.000000

A campaign's stats count its recipients suppressed since it started (no send row is made for
an address already on the list), reading the suppressions made since then through this index
instead of joining every send to its contact, and its reported bounces and complaints from a
partial index holding only the messages a delivery report marked, not every message sent.
The overview's backlog counts the sends waiting or gone wrong from a partial index that holds
only those, not every send ever made.
Plain new indexes; on PostgreSQL they are built ``CONCURRENTLY``, so the tables keep taking
writes while they are.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0028'
down_revision: str | None = '0026'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# name: (table, columns, partial index condition or None)
INDEXES = {
    'ix_suppressions_created_at': ('suppressions', ['created_at'], None),
    'ix_sent_messages_reported': (
        'sent_messages',
        ['campaign_send_id'],
        'report_outcome IS NOT NULL',
    ),
    'ix_campaign_sends_unfinished': (
        'campaign_sends',
        ['status', 'campaign_id'],
        "status IN ('pending', 'sending', 'failed', 'unknown')",
    ),
}


def upgrade() -> None:
    sqlite = op.get_bind().dialect.name == 'sqlite'
    if sqlite:
        for name, (table, columns, where) in INDEXES.items():
            condition = sa.text(where) if where else None
            op.create_index(name, table, columns, sqlite_where=condition)
        return
    with op.get_context().autocommit_block():
        for name, (table, columns, where) in INDEXES.items():
            op.create_index(
                name,
                table,
                columns,
                postgresql_where=sa.text(where) if where else None,
                postgresql_concurrently=True,
                if_not_exists=True,
            )


def downgrade() -> None:
    for name, (table, _, _) in INDEXES.items():
        op.drop_index(name, table_name=table)
