"""search indexes (pg_trgm and full text on PostgreSQL, FTS5 on SQLite) and the list API's
keyset indexes

Revision ID: 0020
Revises: 0015
Create Date: 2026-12-03 08:30:00.000000

Every listed table already has ``updated_at`` (NOT NULL, set on insert and on every ORM or
Core update through ``Timestamped``), so nothing is backfilled: the lists order by
``(updated_at, id)`` and get one index for that order, and one more behind each usual filter.

Search (``crm_core.readapi.search``) looks at contacts' names, e-mail addresses and phone
numbers, customers' names and support cases' subjects:

- PostgreSQL: GIN full-text indexes on the names and subjects (their words), the ``pg_trgm``
  extension and GIN trigram indexes on them (a typo), and B-tree pattern indexes on the e-mail
  address (its beginning) and on the reversed phone number (the end of its digits).
- SQLite: an FTS5 table per searched table (trigram tokenizer, so substrings and digit runs
  match), its rowid the row's id, built from the existing rows and kept in step by triggers.
  A later batch migration that rebuilds ``contacts``, ``customers`` or ``support_cases`` drops
  their triggers with the old table and must create them again (``tests`` check they exist).

None of these objects are in the models' metadata; ``crm_core.migrate.include_object`` keeps
autogenerate from reading them as drift.
"""

from collections.abc import Sequence

from alembic import op


revision: str = '0020'
down_revision: str | None = '0018'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

KEYSET_INDEXES = [
    ('ix_customers_updated_at_id', 'customers', ['updated_at', 'id']),
    ('ix_contacts_updated_at_id', 'contacts', ['updated_at', 'id']),
    ('ix_support_cases_updated_at_id', 'support_cases', ['updated_at', 'id']),
    ('ix_support_cases_status_updated_at_id', 'support_cases', ['status', 'updated_at', 'id']),
    (
        'ix_support_cases_assignee_status_updated_at_id',
        'support_cases',
        ['assignee', 'status', 'updated_at', 'id'],
    ),
    ('ix_opportunities_updated_at_id', 'opportunities', ['updated_at', 'id']),
    ('ix_opportunities_owner_updated_at_id', 'opportunities', ['owner', 'updated_at', 'id']),
    ('ix_orders_updated_at_id', 'orders', ['updated_at', 'id']),
    ('ix_orders_status_updated_at_id', 'orders', ['status', 'updated_at', 'id']),
    ('ix_orders_customer_id_updated_at_id', 'orders', ['customer_id', 'updated_at', 'id']),
    ('ix_products_updated_at_id', 'products', ['updated_at', 'id']),
    ('ix_agreements_updated_at_id', 'agreements', ['updated_at', 'id']),
    # An opportunity's timeline, newest first (replaces the index on the id alone).
    ('ix_activities_opportunity_id_occurred_at', 'activities', ['opportunity_id', 'occurred_at']),
]

# PostgreSQL: the expressions crm_core.readapi.search compares, spelled the same way.
CONTACT_NAMES = (
    "coalesce(first_name, '') || ' ' || coalesce(last_name, '') || ' ' || coalesce(full_name, '')"
)
PG_INDEXES = {
    # Names: their words (full text), and trigrams for a typo when no row has every word.
    'ix_search_contacts_name_words': f"contacts USING gin (to_tsvector('simple', {CONTACT_NAMES}))",
    'ix_search_contacts_name': f"contacts USING gin ((lower({CONTACT_NAMES})) gin_trgm_ops)",
    # An address exactly (the unique index) or by its beginning.
    'ix_search_contacts_email': "contacts (email_normalized text_pattern_ops)",
    # A phone number by the end of its digits, whichever way it was written.
    'ix_search_contacts_phone': "contacts ((reverse(phone)) text_pattern_ops)",
    'ix_search_customers_name_words': "customers USING gin (to_tsvector('simple', name))",
    'ix_search_customers_name': "customers USING gin (name_key gin_trgm_ops)",
    'ix_search_support_cases_subject_words': (
        "support_cases USING gin (to_tsvector('english', subject))"
    ),
    'ix_search_support_cases_subject': "support_cases USING gin ((lower(subject)) gin_trgm_ops)",
}

# SQLite: per table, its FTS5 columns, the values a row gives them, and the source columns
# whose change rewrites the row.
CONTACT_VALUES = (
    "trim(coalesce(new.first_name, '') || ' ' || coalesce(new.last_name, '') || ' ' || "
    "coalesce(new.full_name, '')), coalesce(new.email_normalized, ''), "
    "replace(coalesce(new.phone, ''), '+', '')"
)
FTS_TABLES = {
    'contacts': (
        'contacts_fts',
        'name, email, digits',
        CONTACT_VALUES,
        'first_name, last_name, full_name, email_normalized, phone',
    ),
    'customers': ('customers_fts', 'name', 'new.name', 'name'),
    'support_cases': ('support_cases_fts', 'subject', 'new.subject', 'subject'),
}


def _sqlite_upgrade() -> None:
    for table, (fts, columns, values, watched) in FTS_TABLES.items():
        op.execute(f"CREATE VIRTUAL TABLE {fts} USING fts5({columns}, tokenize='trigram')")
        op.execute(
            f"INSERT INTO {fts} (rowid, {columns}) "
            f"SELECT new.id, {values} FROM {table} AS new"
        )
        op.execute(
            f"CREATE TRIGGER {fts}_insert AFTER INSERT ON {table} BEGIN "
            f"INSERT INTO {fts} (rowid, {columns}) VALUES (new.id, {values}); END"
        )
        op.execute(
            f"CREATE TRIGGER {fts}_delete AFTER DELETE ON {table} BEGIN "
            f"DELETE FROM {fts} WHERE rowid = old.id; END"
        )
        op.execute(
            f"CREATE TRIGGER {fts}_update AFTER UPDATE OF {watched} ON {table} BEGIN "
            f"DELETE FROM {fts} WHERE rowid = old.id; "
            f"INSERT INTO {fts} (rowid, {columns}) VALUES (new.id, {values}); END"
        )


def _sqlite_downgrade() -> None:
    for _table, (fts, _columns, _values, _watched) in FTS_TABLES.items():
        for event in ('insert', 'delete', 'update'):
            op.execute(f"DROP TRIGGER IF EXISTS {fts}_{event}")
        op.execute(f"DROP TABLE IF EXISTS {fts}")


def upgrade() -> None:
    for name, table, columns in KEYSET_INDEXES:
        op.create_index(name, table, columns, unique=False)
    op.drop_index('ix_activities_opportunity_id', table_name='activities')
    if op.get_bind().dialect.name == 'postgresql':
        op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        for name, definition in PG_INDEXES.items():
            op.execute(f"CREATE INDEX {name} ON {definition}")
    else:
        _sqlite_upgrade()


def downgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        for name in PG_INDEXES:
            op.execute(f"DROP INDEX IF EXISTS {name}")
        # The extension stays: it may have been there before, and other objects may use it.
    else:
        _sqlite_downgrade()
    op.create_index('ix_activities_opportunity_id', 'activities', ['opportunity_id'], unique=False)
    for name, table, _columns in reversed(KEYSET_INDEXES):
        op.drop_index(name, table_name=table)
