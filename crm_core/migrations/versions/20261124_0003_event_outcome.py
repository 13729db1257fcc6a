"""inbox events record their outcome (e.g. an e-mail's thread decision)

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24 19:44:28.590359
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


import crm_core.db

revision: str = '0003'
down_revision: str | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("inbox_events") as batch:
        batch.add_column(sa.Column("outcome", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("inbox_events") as batch:
        batch.drop_column("outcome")
