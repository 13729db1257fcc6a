"""sources have a provider; inbox events keep the provider's topic and may be ignored

Revision ID: 0014
Revises: 0007
Create Date: 2026-12-03 06:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0014'
down_revision: str | None = '0007'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PROVIDERS = "'standard', 'shopify', 'woocommerce', 'stripe', 'zendesk', 'freshdesk', 'typeform'"
STATUSES = "'received', 'processing', 'processed', 'invalid', 'failed', 'dead'"


def upgrade() -> None:
    # Every existing source signs with Standard Webhooks: the server default says so.
    with op.batch_alter_table('sources') as batch:
        batch.add_column(
            sa.Column('provider', sa.String(length=40), server_default='standard', nullable=False)
        )
        batch.create_check_constraint(op.f('ck_sources_provider_allowed'), f"provider IN ({PROVIDERS})")

    with op.batch_alter_table('inbox_events') as batch:
        batch.add_column(sa.Column('topic', sa.String(length=255), nullable=True))
        batch.drop_constraint(op.f('ck_inbox_events_status_allowed'), type_='check')
        batch.create_check_constraint(op.f('ck_inbox_events_status_allowed'), f"status IN ({STATUSES}, 'ignored')")


def downgrade() -> None:
    # An ignored event was never processed; without the status it would be picked up.
    op.execute("DELETE FROM inbox_events WHERE status = 'ignored'")
    with op.batch_alter_table('inbox_events') as batch:
        batch.drop_constraint(op.f('ck_inbox_events_status_allowed'), type_='check')
        batch.create_check_constraint(op.f('ck_inbox_events_status_allowed'), f"status IN ({STATUSES})")
        batch.drop_column('topic')

    with op.batch_alter_table('sources') as batch:
        batch.drop_constraint(op.f('ck_sources_provider_allowed'), type_='check')
        batch.drop_column('provider')
