"""mailboxes read over IMAP

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24 19:15:59.198416
"""

from collections.abc import Sequence

import sqlalchemy as sa
import crm_core.db
from alembic import op

revision: str = '0002'
down_revision: str | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('mailboxes',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('name', sa.String(length=80), nullable=False),
    sa.Column('host', sa.String(length=255), nullable=False),
    sa.Column('port', sa.Integer(), nullable=False),
    sa.Column('security', sa.String(length=40), nullable=False),
    sa.Column('username', sa.String(length=255), nullable=False),
    sa.Column('password', sa.Text(), nullable=False),
    sa.Column('folder', sa.String(length=255), nullable=False),
    sa.Column('move_to', sa.String(length=255), nullable=True),
    sa.Column('enabled', sa.Boolean(), server_default=sa.true(), nullable=False),
    sa.Column('uidvalidity', sa.BigInteger(), nullable=True),
    sa.Column('last_uid', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('last_polled_at', crm_core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('lease_owner', sa.String(length=255), nullable=True),
    sa.Column('lease_expires_at', crm_core.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('created_at', crm_core.db.UTCDateTime(timezone=True), server_default=sa.func.current_timestamp(), nullable=False),
    sa.Column('updated_at', crm_core.db.UTCDateTime(timezone=True), server_default=sa.func.current_timestamp(), nullable=False),
    sa.CheckConstraint("security IN ('plain', 'starttls', 'tls')", name=op.f('ck_mailboxes_security_allowed')),
    sa.CheckConstraint('last_uid >= 0', name=op.f('ck_mailboxes_last_uid_not_negative')),
    sa.CheckConstraint('port BETWEEN 1 AND 65535', name=op.f('ck_mailboxes_port_range')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_mailboxes')),
    sa.UniqueConstraint('name', name=op.f('uq_mailboxes_name'))
    )


def downgrade() -> None:
    op.drop_table('mailboxes')
