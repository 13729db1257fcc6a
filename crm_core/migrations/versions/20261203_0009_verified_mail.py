"""verified mail: sent Message-IDs, verified bounces, message keys, two activity types

Revision ID: 0009
Revises: 0011
Create Date: 2026-12-03 06:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_Time = sa.DateTime(timezone=True)
_TYPES = [
    "lead_captured", "email_received", "email_sent", "call", "meeting", "note", "case_opened",
    "case_status_changed", "case_comment", "case_escalated", "order_placed",
    "deal_stage_changed", "agreement_signed", "campaign_sent", "unsubscribed", "followup_due",
]
_NEW_TYPES = ["bounce_unverified", "suppression_removed"]


def _type_check(types: list[str]) -> str:
    return "type IN (" + ", ".join(f"'{t}'" for t in types) + ")"


def upgrade() -> None:
    op.create_table(
        "sent_messages",
        sa.Column("id", _BigId, nullable=False),
        sa.Column("message_id", sa.Text(), nullable=False),
        sa.Column("recipient", sa.String(length=255), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("sent_at", _Time, nullable=False),
        sa.CheckConstraint(
            "kind IN ('campaign', 'case_reply', 'auto_ack')",
            name=op.f("ck_sent_messages_kind_allowed"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sent_messages")),
        sa.UniqueConstraint("message_id", name=op.f("uq_sent_messages_message_id")),
    )
    op.create_table(
        "mail_bounces",
        sa.Column("id", _BigId, nullable=False),
        sa.Column("email_normalized", sa.String(length=255), nullable=False),
        sa.Column("report_key", sa.Text(), nullable=False),
        sa.Column("original_message_id", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=40), nullable=True),
        sa.Column("permanent", sa.Boolean(), nullable=False),
        sa.Column("diagnostic", sa.Text(), nullable=True),
        sa.Column("received_at", _Time, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mail_bounces")),
        sa.UniqueConstraint(
            "report_key", "email_normalized", name=op.f("uq_mail_bounces_report_key_email_normalized")
        ),
    )
    op.create_index(
        "ix_mail_bounces_email_normalized_received_at",
        "mail_bounces",
        ["email_normalized", "received_at"],
    )
    with op.batch_alter_table("activities") as batch:
        batch.add_column(sa.Column("message_key", sa.Text(), nullable=True))
        batch.create_unique_constraint(batch.f("uq_activities_message_key"), ["message_key"])
        batch.drop_constraint(batch.f("ck_activities_type_allowed"), type_="check")
        batch.create_check_constraint("type_allowed", _type_check(_TYPES + _NEW_TYPES))


def downgrade() -> None:
    op.execute(
        "DELETE FROM activities WHERE type IN (" + ", ".join(f"'{t}'" for t in _NEW_TYPES) + ")"
    )
    with op.batch_alter_table("activities") as batch:
        batch.drop_constraint(batch.f("ck_activities_type_allowed"), type_="check")
        batch.create_check_constraint("type_allowed", _type_check(_TYPES))
        batch.drop_constraint(batch.f("uq_activities_message_key"), type_="unique")
        batch.drop_column("message_key")
    op.drop_index("ix_mail_bounces_email_normalized_received_at", table_name="mail_bounces")
    op.drop_table("mail_bounces")
    op.drop_table("sent_messages")
