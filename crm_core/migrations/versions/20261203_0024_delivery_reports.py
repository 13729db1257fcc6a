"""providers' delivery reports: applied once, matched to what was sent by the provider's id

Revision ID: 0024
Revises: 0019
Create Date: 2026-12-03 11:30:00.000000

``sent_messages`` learns the provider's id of each message, the campaign send row it
was, and what a delivery report last said of it; a suppression, the provider whose
report made it; ``delivery_reports`` keeps every report applied, unique per provider
and report id. ``sent_messages`` and ``suppressions`` are small tables nothing
cascades from, so SQLite rebuilds them in batch mode. The activity types gain
``delivery_reported``: the CHECK is read from the database and widened by that one
value, whatever other values it holds.
"""

import re
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import crm_core.db
from crm_core.migrate import sqlite_replace_in_schema


revision: str = '0024'
down_revision: str | None = '0019'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')
NEW_TYPE = 'delivery_reported'


def upgrade() -> None:
    with op.batch_alter_table('sent_messages') as batch:
        batch.add_column(sa.Column('provider_message_id', sa.Text(), nullable=True))
        batch.add_column(sa.Column('campaign_send_id', _ID, nullable=True))
        batch.add_column(sa.Column('report_outcome', sa.String(length=40), nullable=True))
        batch.add_column(sa.Column('reported_at', crm_core.db.UTCDateTime(timezone=True), nullable=True))
        batch.create_index(batch.f('ix_sent_messages_provider_message_id'), ['provider_message_id'])
        batch.create_index(batch.f('ix_sent_messages_campaign_send_id'), ['campaign_send_id'])
        batch.create_foreign_key(
            batch.f('fk_sent_messages_campaign_send_id_campaign_sends'), 'campaign_sends',
            ['campaign_send_id'], ['id'], ondelete='SET NULL',
        )
    with op.batch_alter_table('suppressions') as batch:
        batch.add_column(sa.Column('provider', sa.String(length=40), nullable=True))
    op.create_table(
        'delivery_reports',
        sa.Column('id', _ID, nullable=False),
        sa.Column('provider', sa.String(length=40), nullable=False),
        sa.Column('report_id', sa.String(length=255), nullable=False),
        sa.Column('recipient', sa.String(length=255), nullable=False),
        sa.Column('outcome', sa.String(length=40), nullable=False),
        sa.Column('permanent', sa.Boolean(), nullable=False),
        sa.Column('sent_message_id', _ID, nullable=True),
        sa.Column('result', sa.Text(), nullable=False),
        sa.Column('received_at', crm_core.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ['sent_message_id'], ['sent_messages.id'],
            name=op.f('fk_delivery_reports_sent_message_id_sent_messages'), ondelete='SET NULL',
        ),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_delivery_reports')),
        sa.UniqueConstraint('provider', 'report_id', name=op.f('uq_delivery_reports_provider_report_id')),
    )
    types = _activity_types()
    if NEW_TYPE not in types:
        _replace_activity_types(types, [*types, NEW_TYPE])


def downgrade() -> None:
    op.execute(f"DELETE FROM activities WHERE type = '{NEW_TYPE}'")
    types = _activity_types()
    if NEW_TYPE in types:
        _replace_activity_types(types, [t for t in types if t != NEW_TYPE])
    op.drop_table('delivery_reports')
    with op.batch_alter_table('suppressions') as batch:
        batch.drop_column('provider')
    with op.batch_alter_table('sent_messages') as batch:
        batch.drop_constraint(batch.f('fk_sent_messages_campaign_send_id_campaign_sends'), type_='foreignkey')
        batch.drop_index(batch.f('ix_sent_messages_campaign_send_id'))
        batch.drop_index(batch.f('ix_sent_messages_provider_message_id'))
        for name in ('reported_at', 'report_outcome', 'campaign_send_id', 'provider_message_id'):
            batch.drop_column(name)


def _in(values: list[str]) -> str:
    return "type IN (" + ", ".join(f"'{v}'" for v in values) + ")"


def _activity_types() -> list[str]:
    """The values the activities' type CHECK allows now, in their order."""
    bind = op.get_bind()
    if bind.dialect.name == 'sqlite':
        sql = bind.execute(
            sa.text("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'activities'")
        ).scalar_one()
        found = re.search(r"ck_activities_type_allowed CHECK \(type IN \(([^)]*)\)\)", sql)
    else:
        definition = bind.execute(
            sa.text(
                "SELECT pg_get_constraintdef(oid) FROM pg_constraint"
                " WHERE conname = 'ck_activities_type_allowed'"
            )
        ).scalar_one()
        found = re.search(r"(.*)", definition)
    assert found is not None, "activities has no type CHECK"
    return re.findall(r"'([a-z_]+)'", found.group(1))


def _replace_activity_types(old: list[str], new: list[str]) -> None:
    bind = op.get_bind()
    if bind.dialect.name == 'sqlite':
        sqlite_replace_in_schema(bind, 'activities', _in(old), _in(new))
        return
    name = op.f('ck_activities_type_allowed')
    op.drop_constraint(name, 'activities', type_='check')
    op.create_check_constraint(name, 'activities', _in(new))
