"""recurring campaign runs: send rows belong to a run, unique per (campaign, run, contact)

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-24 22:12:54.430213
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0007'
down_revision: str | None = '0006'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('campaign_sends', schema=None) as batch_op:
        batch_op.add_column(sa.Column('run', sa.Integer(), server_default='1', nullable=False))
        batch_op.drop_constraint(batch_op.f('uq_campaign_sends_campaign_id_contact_id'), type_='unique')
        batch_op.create_unique_constraint(batch_op.f('uq_campaign_sends_campaign_id_run_contact_id'), ['campaign_id', 'run', 'contact_id'])

    with op.batch_alter_table('marketing_campaigns', schema=None) as batch_op:
        batch_op.add_column(sa.Column('current_run', sa.Integer(), server_default='1', nullable=False))



def downgrade() -> None:
    # One send per (campaign, contact) again: the rows of later runs go.
    op.execute("DELETE FROM campaign_sends WHERE run > 1")
    with op.batch_alter_table('marketing_campaigns', schema=None) as batch_op:
        batch_op.drop_column('current_run')

    with op.batch_alter_table('campaign_sends', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('uq_campaign_sends_campaign_id_run_contact_id'), type_='unique')
        batch_op.create_unique_constraint(batch_op.f('uq_campaign_sends_campaign_id_contact_id'), ['campaign_id', 'contact_id'])
        batch_op.drop_column('run')

