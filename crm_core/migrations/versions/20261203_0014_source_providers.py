"""sources have a provider; inbox events keep the provider's topic and may be ignored

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-03 06:00:00.000000

On SQLite no table is rebuilt: dropping ``inbox_events`` to rebuild it would run
its foreign key actions (``event_entities`` rows cascade away), and enforcement
cannot be switched off inside the migration's transaction. The provider column
is added with its CHECK inline, and the status CHECK is widened in the stored
schema, the procedure SQLite documents for loosening a CHECK constraint.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from crm_core.migrate import sqlite_replace_in_schema


revision: str = '0014'
down_revision: str | None = '0013'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PROVIDERS = "'standard', 'shopify', 'woocommerce', 'stripe', 'zendesk', 'freshdesk', 'typeform'"
STATUSES = "'received', 'processing', 'processed', 'invalid', 'failed', 'dead'"
WITH_IGNORED = f"{STATUSES}, 'ignored'"


def upgrade() -> None:
    if op.get_bind().dialect.name == 'sqlite':
        # Every existing source signs with Standard Webhooks: the default says so.
        op.execute(
            "ALTER TABLE sources ADD COLUMN provider VARCHAR(40) DEFAULT 'standard' NOT NULL"
            f" CONSTRAINT ck_sources_provider_allowed CHECK (provider IN ({PROVIDERS}))"
        )
        op.add_column('inbox_events', sa.Column('topic', sa.String(length=255), nullable=True))
        sqlite_replace_in_schema(op.get_bind(), 'inbox_events', f"status IN ({STATUSES})", f"status IN ({WITH_IGNORED})")
        return
    op.add_column(
        'sources',
        sa.Column('provider', sa.String(length=40), server_default='standard', nullable=False),
    )
    op.create_check_constraint(op.f('ck_sources_provider_allowed'), 'sources', f"provider IN ({PROVIDERS})")
    op.add_column('inbox_events', sa.Column('topic', sa.String(length=255), nullable=True))
    op.drop_constraint(op.f('ck_inbox_events_status_allowed'), 'inbox_events', type_='check')
    op.create_check_constraint(
        op.f('ck_inbox_events_status_allowed'), 'inbox_events', f"status IN ({WITH_IGNORED})"
    )


def downgrade() -> None:
    # An ignored event was never processed; without its status it would be picked up.
    op.execute("DELETE FROM inbox_events WHERE status = 'ignored'")
    if op.get_bind().dialect.name == 'sqlite':
        sqlite_replace_in_schema(op.get_bind(), 'inbox_events', f"status IN ({WITH_IGNORED})", f"status IN ({STATUSES})")
        op.drop_column('inbox_events', 'topic')
        op.execute("ALTER TABLE sources DROP COLUMN provider")
        return
    op.drop_constraint(op.f('ck_inbox_events_status_allowed'), 'inbox_events', type_='check')
    op.create_check_constraint(
        op.f('ck_inbox_events_status_allowed'), 'inbox_events', f"status IN ({STATUSES})"
    )
    op.drop_column('inbox_events', 'topic')
    op.drop_constraint(op.f('ck_sources_provider_allowed'), 'sources', type_='check')
    op.drop_column('sources', 'provider')

