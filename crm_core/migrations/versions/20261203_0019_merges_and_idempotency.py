"""merged customers and contacts (tombstones), version counters for HTTP validators,
idempotency keys

Revision ID: 0019
Revises: 0017
Create Date: 2026-12-03 08:30:00.000000

Only columns are added to existing tables (no table is rebuilt on SQLite: a rebuild of
``customers`` would cascade into everything below it, see 0014). Every existing row starts
at version 1 and is merged into nothing.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0019'
down_revision: str | None = '0020'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')
_TIME = sa.DateTime(timezone=True)
VERSIONED = ('customers', 'contacts', 'support_cases', 'opportunities', 'agreements', 'orders')
MERGED = ('customers', 'contacts')
# How a stored CREATE TABLE ends (the last line closes the column list).
_LAST = '\n)'


def _fk(table: str) -> str:
    return (
        f'CONSTRAINT fk_{table}_merged_into_{table} FOREIGN KEY(merged_into)'
        f' REFERENCES {table} (id) ON DELETE CASCADE'
    )


def upgrade() -> None:
    sqlite = op.get_bind().dialect.name == 'sqlite'
    for table in VERSIONED:
        op.add_column(
            table, sa.Column('version', sa.Integer(), server_default='1', nullable=False)
        )
    for table in MERGED:
        if sqlite:
            op.execute(f'ALTER TABLE {table} ADD COLUMN merged_into INTEGER')
            _sqlite_edit_schema(table, _LAST, f', {_fk(table)}{_LAST}')
        else:
            op.add_column(table, sa.Column('merged_into', _ID, nullable=True))
            op.create_foreign_key(
                op.f(f'fk_{table}_merged_into_{table}'),
                table,
                table,
                ['merged_into'],
                ['id'],
                ondelete='CASCADE',
            )
        op.create_index(op.f(f'ix_{table}_merged_into'), table, ['merged_into'])
    op.create_table(
        'idempotency_keys',
        sa.Column('id', _ID, nullable=False),
        sa.Column('actor', sa.String(length=255), nullable=False),
        sa.Column('key', sa.String(length=255), nullable=False),
        sa.Column('fingerprint', sa.String(length=64), nullable=False),
        sa.Column('state', sa.String(length=40), nullable=False),
        sa.Column('status', sa.Integer(), nullable=True),
        sa.Column('headers', sa.JSON(), nullable=True),
        sa.Column('body', sa.Text(), nullable=True),
        sa.Column('created_at', _TIME, nullable=False),
        sa.Column('expires_at', _TIME, nullable=False),
        sa.CheckConstraint(
            "state IN ('in_progress', 'done')", name=op.f('ck_idempotency_keys_state_allowed')
        ),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_idempotency_keys')),
        sa.UniqueConstraint('actor', 'key', name=op.f('uq_idempotency_keys_actor_key')),
    )
    op.create_index('ix_idempotency_keys_expires_at', 'idempotency_keys', ['expires_at'])


def downgrade() -> None:
    op.drop_index('ix_idempotency_keys_expires_at', table_name='idempotency_keys')
    op.drop_table('idempotency_keys')
    sqlite = op.get_bind().dialect.name == 'sqlite'
    for table in MERGED:
        op.drop_index(op.f(f'ix_{table}_merged_into'), table_name=table)
        if sqlite:
            _sqlite_edit_schema(table, f', {_fk(table)}{_LAST}', _LAST)
            op.execute(f'ALTER TABLE {table} DROP COLUMN merged_into')
        else:
            op.drop_constraint(op.f(f'fk_{table}_merged_into_{table}'), table, type_='foreignkey')
            op.drop_column(table, 'merged_into')
    for table in VERSIONED:
        if sqlite:
            op.execute(f'ALTER TABLE {table} DROP COLUMN version')
        else:
            op.drop_column(table, 'version')


def _sqlite_edit_schema(table: str, old: str, new: str) -> None:
    """Edit a table's stored CREATE statement at its end (https://sqlite.org/lang_altertable.html,
    "Making Other Kinds Of Table Schema Changes"): a named table-level foreign key that every
    row meets (the column is new, all NULL) is added, or removed before its column goes.
    ALTER TABLE ADD COLUMN could only add an unnamed one, which the models do not describe."""
    conn = op.get_bind()
    sql = conn.execute(
        sa.text("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = :name"),
        {'name': table},
    ).scalar_one()
    if not sql.endswith(old):
        raise RuntimeError(f'{table}: its schema does not end with {old!r}')
    version = conn.exec_driver_sql('PRAGMA schema_version').scalar_one()
    conn.exec_driver_sql('PRAGMA writable_schema = ON')
    conn.execute(
        sa.text("UPDATE sqlite_master SET sql = :sql WHERE type = 'table' AND name = :name"),
        {'sql': sql[: len(sql) - len(old)] + new, 'name': table},
    )
    conn.exec_driver_sql(f'PRAGMA schema_version = {int(version) + 1}')
    conn.exec_driver_sql('PRAGMA writable_schema = OFF')
