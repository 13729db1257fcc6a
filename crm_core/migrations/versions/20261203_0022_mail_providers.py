"""sources may be Mailgun, SendGrid or Postmark, keep a public key, and deliver mail events

Revision ID: 0022
Revises: 0025
Create Date: 2026-12-03 11:45:00.000000

The e-mail providers' sources take inbound mail (``emails``) and delivery events, a new
kind (``mail_events``); a SendGrid source keeps the public key its event batches are
verified with. On SQLite both CHECKs are widened in the stored schema, as 0014 and 0017
do, so no table is rebuilt.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from crm_core.migrate import sqlite_replace_in_schema


revision: str = '0022'
down_revision: str | None = '0025'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PROVIDERS = (
    "'standard', 'shopify', 'woocommerce', 'stripe', 'zendesk', 'freshdesk', 'typeform', 'form',"
    " 'custom'"
)
WITH_MAIL = f"{PROVIDERS}, 'mailgun', 'sendgrid', 'postmark'"
KINDS = "'leads', 'emails', 'tickets', 'orders', 'deals'"
WITH_MAIL_EVENTS = f"{KINDS}, 'mail_events'"


def upgrade() -> None:
    op.add_column('sources', sa.Column('public_key', sa.Text(), nullable=True))
    _widen('sources', 'provider', f"provider IN ({PROVIDERS})", f"provider IN ({WITH_MAIL})")
    _widen('inbox_events', 'kind', f"kind IN ({KINDS})", f"kind IN ({WITH_MAIL_EVENTS})")


def downgrade() -> None:
    # Their events cannot be read any more, but they are kept (a redelivery stays a no-op):
    # the sources are disabled and kept as standard, their mail events filed as ignored emails.
    op.execute(
        "UPDATE sources SET enabled = false, provider = 'standard'"
        " WHERE provider IN ('mailgun', 'sendgrid', 'postmark')"
    )
    op.execute(
        "UPDATE inbox_events SET kind = 'emails', status = 'ignored' WHERE kind = 'mail_events'"
    )
    _widen('inbox_events', 'kind', f"kind IN ({WITH_MAIL_EVENTS})", f"kind IN ({KINDS})")
    _widen('sources', 'provider', f"provider IN ({WITH_MAIL})", f"provider IN ({PROVIDERS})")
    if op.get_bind().dialect.name == 'sqlite':
        op.execute("ALTER TABLE sources DROP COLUMN public_key")
    else:
        op.drop_column('sources', 'public_key')


def _widen(table: str, column: str, old: str, new: str) -> None:
    if op.get_bind().dialect.name == 'sqlite':
        sqlite_replace_in_schema(op.get_bind(), table, old, new)
        return
    name = op.f(f'ck_{table}_{column}_allowed')
    op.drop_constraint(name, table, type_='check')
    op.create_check_constraint(name, table, new)
