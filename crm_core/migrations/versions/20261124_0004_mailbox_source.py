"""mailboxes store their messages as inbox events of a source

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24 20:13:43.180841
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# A mailbox named N stores under the source "mailbox-N" (see services.source_name_of);
# sources.name is 80 characters, so the mailbox name is cut at 72.
_SOURCE_NAME = "'mailbox-' || substr(mailboxes.name, 1, 72)"


def upgrade() -> None:
    with op.batch_alter_table("mailboxes") as batch:
        batch.add_column(
            sa.Column(
                "source_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
            )
        )
    # Mailboxes added before this revision get their source now.
    op.execute(
        f"INSERT INTO sources (name) SELECT {_SOURCE_NAME} FROM mailboxes "
        f"WHERE NOT EXISTS (SELECT 1 FROM sources WHERE sources.name = {_SOURCE_NAME})"
    )
    op.execute(
        "UPDATE mailboxes SET source_id = "
        f"(SELECT sources.id FROM sources WHERE sources.name = {_SOURCE_NAME})"
    )
    with op.batch_alter_table("mailboxes") as batch:
        batch.alter_column(
            "source_id",
            existing_type=sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            nullable=False,
        )
        batch.create_index(op.f("ix_mailboxes_source_id"), ["source_id"], unique=False)
        batch.create_foreign_key(
            op.f("fk_mailboxes_source_id_sources"),
            "sources",
            ["source_id"],
            ["id"],
            ondelete="RESTRICT",
        )


def downgrade() -> None:
    # The sources stay: their inbox events still refer to them.
    with op.batch_alter_table("mailboxes") as batch:
        batch.drop_constraint(op.f("fk_mailboxes_source_id_sources"), type_="foreignkey")
        batch.drop_index(op.f("ix_mailboxes_source_id"))
        batch.drop_column("source_id")
