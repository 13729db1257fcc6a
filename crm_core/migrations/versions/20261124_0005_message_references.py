"""message references: threading that does not depend on arrival order

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-24 21:36:13.894817
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "message_references",
        sa.Column("activity_id", _BigId, nullable=False),
        sa.Column("message_id", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["activity_id"],
            ["activities.id"],
            name=op.f("fk_message_references_activity_id_activities"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("activity_id", "message_id", name=op.f("pk_message_references")),
    )
    with op.batch_alter_table("message_references") as batch:
        batch.create_index(batch.f("ix_message_references_message_id"), ["message_id"])
    _backfill()


def _backfill() -> None:
    """Record the references of the e-mails stored before this revision (kept in their details)."""
    activities = sa.table(
        "activities",
        sa.column("id", _BigId),
        sa.column("type", sa.String),
        sa.column("message_id", sa.Text),
        sa.column("details", sa.JSON),
    )
    references = sa.table(
        "message_references", sa.column("activity_id", _BigId), sa.column("message_id", sa.Text)
    )
    conn = op.get_bind()
    query = sa.select(activities.c.id, activities.c.message_id, activities.c.details).where(
        activities.c.type == "email_received", activities.c.message_id.is_not(None)
    )
    rows = []
    for activity_id, own_id, details in conn.execute(query).fetchall():
        details = details or {}
        named = [*(details.get("in_reply_to") or []), *(details.get("references") or [])]
        for message_id in dict.fromkeys(m for m in named if isinstance(m, str) and m != own_id):
            rows.append({"activity_id": activity_id, "message_id": message_id})
        if len(rows) >= 1000:
            conn.execute(references.insert(), rows)
            rows = []
    if rows:
        conn.execute(references.insert(), rows)


def downgrade() -> None:
    with op.batch_alter_table("message_references") as batch:
        batch.drop_index(batch.f("ix_message_references_message_id"))
    op.drop_table("message_references")
