"""people: users with roles, scoped API keys (existing keys keep every scope), the audit log,
custom attributes on customers

Revision ID: 0013
Revises: 0009
Create Date: 2026-12-03 06:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = '0009'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_TIME = sa.DateTime(timezone=True)
# Keys made before scopes existed could do everything; they keep doing so.
_EVERY_SCOPE = '["read", "write", "send", "admin"]'


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", _ID, nullable=False),
        sa.Column("email", sa.String(length=255), nullable=False),
        sa.Column("role", sa.String(length=40), nullable=False),
        sa.Column("password_hash", sa.Text(), nullable=False),
        sa.Column("disabled_at", _TIME, nullable=True),
        sa.Column("last_login_at", _TIME, nullable=True),
        sa.Column("created_at", _TIME, server_default=sa.func.current_timestamp(), nullable=False),
        sa.Column("updated_at", _TIME, server_default=sa.func.current_timestamp(), nullable=False),
        sa.CheckConstraint(
            "role IN ('viewer', 'agent', 'admin')", name=op.f("ck_users_role_allowed")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("email", name=op.f("uq_users_email")),
    )
    op.create_table(
        "audit_entries",
        sa.Column("id", _ID, nullable=False),
        sa.Column("occurred_at", _TIME, nullable=False),
        sa.Column("actor", sa.String(length=255), nullable=False),
        sa.Column("actor_kind", sa.String(length=40), nullable=False),
        sa.Column("entity", sa.String(length=40), nullable=False),
        sa.Column("entity_id", _ID, nullable=False),
        sa.Column("action", sa.String(length=40), nullable=False),
        sa.Column("changes", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_entries")),
    )
    with op.batch_alter_table("audit_entries") as batch:
        batch.create_index("ix_audit_entries_entity_entity_id", ["entity", "entity_id"])
        batch.create_index("ix_audit_entries_actor_occurred_at", ["actor", "occurred_at"])
        batch.create_index("ix_audit_entries_occurred_at", ["occurred_at"])

    with op.batch_alter_table("api_keys") as batch:
        batch.add_column(sa.Column("scopes", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("user_id", _ID, nullable=True))
    op.execute(f"UPDATE api_keys SET scopes = '{_EVERY_SCOPE}'")
    with op.batch_alter_table("api_keys") as batch:
        batch.alter_column("scopes", existing_type=sa.JSON(), nullable=False)
        batch.create_index(op.f("ix_api_keys_user_id"), ["user_id"], unique=False)
        batch.create_foreign_key(
            op.f("fk_api_keys_user_id_users"), "users", ["user_id"], ["id"], ondelete="RESTRICT"
        )

    with op.batch_alter_table("customers") as batch:
        batch.add_column(
            sa.Column("attributes", sa.JSON(), nullable=False, server_default=sa.text("'{}'"))
        )
    with op.batch_alter_table("customers") as batch:
        batch.alter_column("attributes", existing_type=sa.JSON(), server_default=None)


def downgrade() -> None:
    with op.batch_alter_table("customers") as batch:
        batch.drop_column("attributes")
    with op.batch_alter_table("api_keys") as batch:
        batch.drop_constraint(op.f("fk_api_keys_user_id_users"), type_="foreignkey")
        batch.drop_index(op.f("ix_api_keys_user_id"))
        batch.drop_column("user_id")
        batch.drop_column("scopes")
    op.drop_table("audit_entries")
    op.drop_table("users")
