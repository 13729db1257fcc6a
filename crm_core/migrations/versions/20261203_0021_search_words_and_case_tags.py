"""search words: the words searched rows hold, for correcting a typo on PostgreSQL; tags on
support cases

Revision ID: 0021
Revises: 0019
Create Date: 2026-12-03 11:30:00.000000

A query with a typo (``Grace Schlz``) found no row by its words, and search then compared the
whole query with every name by trigram similarity: at a million contacts, the slowest search
by far. ``search_words`` holds each distinct word (as the ``simple`` text-search
configuration splits it: lower-cased; 3 to 40 characters without digits) of contacts' names,
customers' names and cases' subjects, with a trigram index. Search corrects each unknown word
of a query to its nearest known spellings in it (a few thousand or million short rows rather
than a million names), then searches the rows by their words again, through the full-text
indexes of 0020 (``crm_core.readapi.search``).

Rows' words are added by triggers as rows are written. The table has no unique index on
purpose: ``INSERT … ON CONFLICT`` would make two transactions adding the same new words wait
for each other (and deadlock when they add two in opposite orders); a word two transactions
add at once is stored twice, which the search tolerates. A word whose rows are gone stays:
the corrected search then finds nothing by it and search falls back to trigram similarity.

PostgreSQL only: SQLite's FTS5 trigram tables (0020) match substrings and need no such list.
None of these objects are in the models' metadata; ``crm_core.migrate.include_object`` keeps
autogenerate from reading the table as drift.

Support cases get ``tags`` (a JSON list, like customers' and contacts'), empty for the rows
already there. Adding a column does not rebuild ``support_cases`` on SQLite, so its FTS
triggers (0020) stay.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from crm_core.migrate import sqlite_replace_in_schema

revision: str = '0021'
down_revision: str | None = '0024'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Which words are kept: what a typo can be corrected to.
WORD_FILTER = "length(w) BETWEEN 3 AND 40 AND w !~ '[[:digit:]]'"
# Per table: the text its rows are searched by (as migration 0020 indexes it, for NEW), and
# the columns whose change adds words.
SOURCES = {
    'contacts': (
        "coalesce(NEW.first_name, '') || ' ' || coalesce(NEW.last_name, '') || ' ' || "
        "coalesce(NEW.full_name, '')",
        'first_name, last_name, full_name',
    ),
    'customers': ('NEW.name', 'name'),
    'support_cases': ('NEW.subject', 'subject'),
}


def _words_upgrade() -> None:
    op.execute('CREATE TABLE search_words (word text NOT NULL)')
    op.execute(
        f"""CREATE FUNCTION crm_search_words_add(doc text) RETURNS void LANGUAGE sql AS $$
        INSERT INTO search_words (word)
        SELECT DISTINCT w FROM unnest(tsvector_to_array(to_tsvector('simple', doc))) AS w
        WHERE {WORD_FILTER}
          AND NOT EXISTS (SELECT 1 FROM search_words AS known WHERE known.word = w)
        $$"""
    )
    for table, (text, columns) in SOURCES.items():
        op.execute(
            f"""CREATE FUNCTION crm_search_words_{table}() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                PERFORM crm_search_words_add({text});
                RETURN NULL;
            END $$"""
        )
        op.execute(
            f'CREATE TRIGGER search_words_{table} AFTER INSERT OR UPDATE OF {columns}'
            f' ON {table} FOR EACH ROW EXECUTE FUNCTION crm_search_words_{table}()'
        )
    # The words of the rows already there, each once.
    selects = [
        f"SELECT word FROM ts_stat($q$SELECT to_tsvector('simple', {text.replace('NEW.', '')})"
        f' FROM {table}$q$)'
        for table, (text, _columns) in SOURCES.items()
    ]
    op.execute(
        'INSERT INTO search_words (word) SELECT w FROM ('
        + ' UNION '.join(selects)
        + f') AS found (w) WHERE {WORD_FILTER}'
    )
    op.execute('CREATE INDEX ix_search_words_word ON search_words (word)')
    op.execute('CREATE INDEX ix_search_words_trgm ON search_words USING gin (word gin_trgm_ops)')


def _words_downgrade() -> None:
    for table in SOURCES:
        op.execute(f'DROP TRIGGER IF EXISTS search_words_{table} ON {table}')
        op.execute(f'DROP FUNCTION IF EXISTS crm_search_words_{table}()')
    op.execute('DROP FUNCTION IF EXISTS crm_search_words_add(text)')
    op.execute('DROP TABLE IF EXISTS search_words')


def _add_case_tags(sqlite: bool) -> None:
    """``support_cases.tags``, empty for the rows there; like the model, with no default after."""
    if sqlite:
        op.execute("ALTER TABLE support_cases ADD COLUMN tags JSON NOT NULL DEFAULT '[]'")
        sqlite_replace_in_schema(
            op.get_bind(), 'support_cases', "tags JSON NOT NULL DEFAULT '[]'", 'tags JSON NOT NULL'
        )
        return
    op.add_column(
        'support_cases', sa.Column('tags', sa.JSON(), server_default='[]', nullable=False)
    )
    op.alter_column('support_cases', 'tags', server_default=None)


def upgrade() -> None:
    sqlite = op.get_bind().dialect.name == 'sqlite'
    _add_case_tags(sqlite)
    if not sqlite:
        _words_upgrade()


def downgrade() -> None:
    if op.get_bind().dialect.name == 'sqlite':
        # In place: a batch rebuild of support_cases would drop the FTS triggers of 0020.
        op.execute('ALTER TABLE support_cases DROP COLUMN tags')
        return
    _words_downgrade()
    op.drop_column('support_cases', 'tags')
