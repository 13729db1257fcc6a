"""campaigns can fail: status 'failed' and the reason shown with it

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03 06:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0008'
down_revision: str | None = '0007'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BEFORE = "'draft', 'scheduled', 'sending', 'sent', 'paused', 'cancelled'"
_AFTER = f"{_BEFORE}, 'failed'"


def upgrade() -> None:
    with op.batch_alter_table('marketing_campaigns', schema=None) as batch_op:
        batch_op.add_column(sa.Column('failure_reason', sa.Text(), nullable=True))
        batch_op.drop_constraint(op.f('ck_marketing_campaigns_status_allowed'), type_='check')
        batch_op.create_check_constraint(
            op.f('ck_marketing_campaigns_status_allowed'), f"status IN ({_AFTER})"
        )


def downgrade() -> None:
    # A failed campaign was never started (or its next run never scheduled): a draft again.
    op.execute("UPDATE marketing_campaigns SET status = 'draft' WHERE status = 'failed'")
    with op.batch_alter_table('marketing_campaigns', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_marketing_campaigns_status_allowed'), type_='check')
        batch_op.create_check_constraint(
            op.f('ck_marketing_campaigns_status_allowed'), f"status IN ({_BEFORE})"
        )
        batch_op.drop_column('failure_reason')
