"""contacts have a marketing consent (status, time, source, method); web form sources with
their allowed origins and redirect

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-03 08:30:00.000000

The e-mail marketing consent Shopify customers brought was kept in the contact's
``attributes`` (``email_marketing_consent``): it moves into the new columns,
with the Shopify source that last captured the contact as its source, and
leaves the attributes. On SQLite no table is rebuilt (see 0014): columns are
added, with their CHECK and foreign key inline, and the provider CHECK is
widened in the stored schema.

Downgrading puts a Shopify source's consent back into the attributes, and
turns a web form's source into a disabled standard source (the older schema
has no forms; its events are kept).
"""

import datetime as dt
import json
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

import crm_core.db
from alembic import op

from crm_core.migrate import sqlite_replace_in_schema


revision: str = '0016'
down_revision: str | None = '0015'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PROVIDERS = ['standard', 'shopify', 'woocommerce', 'stripe', 'zendesk', 'freshdesk', 'typeform']
WITH_FORM = PROVIDERS + ['form']
CONSENT = "marketing_consent IN ('granted', 'denied', 'unknown')"
KEY = 'email_marketing_consent'
# Shopify's states as consent statuses, as crm_core.providers.shopify_mapping reads them.
STATES = {
    'subscribed': 'granted',
    'unsubscribed': 'denied',
    'redacted': 'denied',
    'not_subscribed': 'unknown',
    'pending': 'unknown',
    'invalid': 'unknown',
}
BACK = {'granted': 'subscribed', 'denied': 'unsubscribed', 'unknown': 'not_subscribed'}
SHOPIFY_SOURCE = sa.text(
    "SELECT e.source_id FROM activities a JOIN inbox_events e ON e.id = a.event_id"
    " JOIN sources s ON s.id = e.source_id"
    " WHERE a.contact_id = :contact AND s.provider = 'shopify' ORDER BY a.id DESC"
)


def _in(column: str, values: list[str]) -> str:
    return f"{column} IN (" + ", ".join(f"'{v}'" for v in values) + ")"


def upgrade() -> None:
    sqlite = op.get_bind().dialect.name == 'sqlite'
    if sqlite:
        op.execute(
            "ALTER TABLE contacts ADD COLUMN marketing_consent VARCHAR(40)"
            f" CONSTRAINT ck_contacts_marketing_consent_allowed CHECK ({CONSENT})"
        )
        op.add_column('contacts', sa.Column('marketing_consent_at', crm_core.db.UTCDateTime(timezone=True), nullable=True))
        op.execute(
            "ALTER TABLE contacts ADD COLUMN marketing_consent_source_id INTEGER"
            " CONSTRAINT fk_contacts_marketing_consent_source_id_sources"
            " REFERENCES sources (id)"
        )
    else:
        op.add_column('contacts', sa.Column('marketing_consent', sa.String(length=40), nullable=True))
        op.create_check_constraint(op.f('ck_contacts_marketing_consent_allowed'), 'contacts', CONSENT)
        op.add_column('contacts', sa.Column('marketing_consent_at', crm_core.db.UTCDateTime(timezone=True), nullable=True))
        op.add_column('contacts', sa.Column('marketing_consent_source_id', sa.BigInteger(), nullable=True))
        op.create_foreign_key(
            op.f('fk_contacts_marketing_consent_source_id_sources'), 'contacts', 'sources',
            ['marketing_consent_source_id'], ['id'],
        )
    op.add_column('contacts', sa.Column('marketing_consent_method', sa.String(length=80), nullable=True))
    op.add_column('sources', sa.Column('allowed_origins', sa.JSON(), nullable=True))
    op.add_column('sources', sa.Column('redirect_url', sa.Text(), nullable=True))
    _replace_check('sources', 'provider', PROVIDERS, WITH_FORM)
    _move_consents_into_columns()


def downgrade() -> None:
    _move_consents_into_attributes()
    op.execute("UPDATE sources SET provider = 'standard', enabled = false WHERE provider = 'form'")
    _replace_check('sources', 'provider', WITH_FORM, PROVIDERS)
    if op.get_bind().dialect.name == 'sqlite':
        for name in ('redirect_url', 'allowed_origins'):
            op.execute(f"ALTER TABLE sources DROP COLUMN {name}")
        # A column with a foreign key cannot be dropped: its clause leaves the stored
        # schema first (every row meets the schema without it).
        sqlite_replace_in_schema(op.get_bind(), 
            'contacts',
            " CONSTRAINT fk_contacts_marketing_consent_source_id_sources"
            " REFERENCES sources (id)",
            "",
        )
        sqlite_replace_in_schema(op.get_bind(), 
            'contacts', f" CONSTRAINT ck_contacts_marketing_consent_allowed CHECK ({CONSENT})", ""
        )
        for name in ('marketing_consent_method', 'marketing_consent_source_id',
                     'marketing_consent_at', 'marketing_consent'):
            op.execute(f"ALTER TABLE contacts DROP COLUMN {name}")
        return
    op.drop_column('sources', 'redirect_url')
    op.drop_column('sources', 'allowed_origins')
    op.drop_constraint(op.f('fk_contacts_marketing_consent_source_id_sources'), 'contacts', type_='foreignkey')
    op.drop_constraint(op.f('ck_contacts_marketing_consent_allowed'), 'contacts', type_='check')
    for name in ('marketing_consent_method', 'marketing_consent_source_id',
                 'marketing_consent_at', 'marketing_consent'):
        op.drop_column('contacts', name)


def _attributes(value: Any) -> dict[str, Any]:
    if isinstance(value, str | bytes):
        value = json.loads(value)
    return dict(value) if isinstance(value, dict) else {}


def _instant(value: Any) -> dt.datetime | None:
    if not isinstance(value, str):
        return None
    try:
        instant = dt.datetime.fromisoformat(value.replace('Z', '+00:00'))
    except ValueError:
        return None
    return instant.replace(tzinfo=dt.UTC) if instant.tzinfo is None else instant.astimezone(dt.UTC)


def _move_consents_into_columns() -> None:
    conn = op.get_bind()
    rows = conn.execute(sa.text(
        "SELECT id, attributes FROM contacts WHERE CAST(attributes AS TEXT) LIKE :key"
    ), {'key': f'%{KEY}%'}).all()
    contacts = sa.table(
        'contacts', sa.column('id', sa.Integer()), sa.column('attributes', sa.JSON()),
        sa.column('marketing_consent', sa.String()),
        sa.column('marketing_consent_at', crm_core.db.UTCDateTime(timezone=True)),
        sa.column('marketing_consent_source_id', sa.Integer()),
        sa.column('marketing_consent_method', sa.String()),
    )
    for contact_id, raw in rows:
        attributes = _attributes(raw)
        consent = attributes.get(KEY)
        if not isinstance(consent, dict) or consent.get('state') not in STATES:
            continue  # not a statement this platform can read: it stays where it is
        level = consent.get('opt_in_level')
        del attributes[KEY]
        conn.execute(
            contacts.update().where(contacts.c.id == contact_id).values(
                attributes=attributes,
                marketing_consent=STATES[consent['state']],
                marketing_consent_at=_instant(consent.get('consent_updated_at')),
                marketing_consent_source_id=conn.execute(SHOPIFY_SOURCE, {'contact': contact_id}).scalar(),
                marketing_consent_method=level[:80] if isinstance(level, str) else None,
            )
        )


def _move_consents_into_attributes() -> None:
    conn = op.get_bind()
    rows = conn.execute(sa.text(
        "SELECT c.id, c.attributes, c.marketing_consent, c.marketing_consent_at,"
        " c.marketing_consent_method FROM contacts c"
        " JOIN sources s ON s.id = c.marketing_consent_source_id WHERE s.provider = 'shopify'"
    )).all()
    contacts = sa.table('contacts', sa.column('id', sa.Integer()), sa.column('attributes', sa.JSON()))
    for contact_id, raw, status, stated_at, method in rows:
        attributes = _attributes(raw)
        if isinstance(stated_at, str):
            stated_at = _instant(stated_at)
        attributes[KEY] = {
            'state': BACK.get(status, 'not_subscribed'),
            'opt_in_level': method,
            'consent_updated_at': stated_at.isoformat() if stated_at else None,
        }
        conn.execute(contacts.update().where(contacts.c.id == contact_id).values(attributes=attributes))


def _replace_check(table: str, column: str, old: list[str], new: list[str]) -> None:
    """Replace the CHECK keeping ``column`` within ``old`` by one within ``new``."""
    if op.get_bind().dialect.name == 'sqlite':
        sqlite_replace_in_schema(op.get_bind(), table, _in(column, old), _in(column, new))
        return
    name = op.f(f'ck_{table}_{column}_allowed')
    op.drop_constraint(name, table, type_='check')
    op.create_check_constraint(name, table, _in(column, new))

