"""sources may be of the custom provider, and keep the mapping their provider reads them with

Revision ID: 0017
Revises: 0015
Create Date: 2026-12-03 08:15:00.000000

The ``mapping`` column is added empty: every existing source reads its requests by its
provider's defaults. On SQLite the provider CHECK is widened in the stored schema, as 0014
does, so no table is rebuilt.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from crm_core.migrate import sqlite_replace_in_schema


revision: str = '0017'
down_revision: str | None = '0016'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PROVIDERS = (
    "'standard', 'shopify', 'woocommerce', 'stripe', 'zendesk', 'freshdesk', 'typeform', 'form'"
)
WITH_CUSTOM = f"{PROVIDERS}, 'custom'"


def upgrade() -> None:
    op.add_column('sources', sa.Column('mapping', sa.JSON(), nullable=True))
    _widen(f"provider IN ({PROVIDERS})", f"provider IN ({WITH_CUSTOM})")


def downgrade() -> None:
    # A custom source cannot be read without its mapping: it is disabled and kept as standard,
    # so its stored events stay (they reference it) and nothing it sends is accepted.
    op.execute("UPDATE sources SET enabled = false, provider = 'standard' WHERE provider = 'custom'")
    _widen(f"provider IN ({WITH_CUSTOM})", f"provider IN ({PROVIDERS})")
    if op.get_bind().dialect.name == 'sqlite':
        op.execute("ALTER TABLE sources DROP COLUMN mapping")
    else:
        op.drop_column('sources', 'mapping')


def _widen(old: str, new: str) -> None:
    if op.get_bind().dialect.name == 'sqlite':
        sqlite_replace_in_schema(op.get_bind(), 'sources', old, new)
        return
    name = op.f('ck_sources_provider_allowed')
    op.drop_constraint(name, 'sources', type_='check')
    op.create_check_constraint(name, 'sources', new)

