"""a version counter for marketing campaigns, their HTTP validator

Revision ID: 0027
Revises: 0025
Create Date: 2026-12-03 12:50:00.000000

Only a column is added (no table is rebuilt on SQLite); every existing campaign starts at
version 1.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0027'
down_revision: str | None = '0022'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        'marketing_campaigns',
        sa.Column('version', sa.Integer(), server_default='1', nullable=False),
    )


def downgrade() -> None:
    if op.get_bind().dialect.name == 'sqlite':
        op.execute('ALTER TABLE marketing_campaigns DROP COLUMN version')
    else:
        op.drop_column('marketing_campaigns', 'version')
