"""secrets at rest: signing secrets, subscription secrets and IMAP passwords become Fernet tokens

Revision ID: 0011
Revises: 0008
Create Date: 2026-12-03 06:00:00.000000

The columns keep their types; their values are encrypted under the newest key
of the keyring the application uses (CRM_ENCRYPTION_KEYS, or on the embedded
default var/encryption_key, generated if absent). The keys are only needed
when there is a row to encrypt. A value that already decrypts is left alone,
so a half-applied upgrade can be run again. Downgrade decrypts them back.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import context, op

from crm_core.config import get_settings
from crm_core.encryption.keyring import Keyring

revision: str = '0011'
down_revision: str | None = '0008'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# (table, column) of every secret at rest; read and written as plain text here.
SECRETS = (
    ("source_secrets", "secret"),
    ("subscriptions", "secret"),
    ("mailboxes", "password"),
)


def _keyring() -> Keyring:
    given = context.config.attributes.get("keyring")
    return given if given is not None else Keyring.from_settings(get_settings())


def _rewrite(encrypting: bool) -> None:
    bind = op.get_bind()
    keyring: Keyring | None = None
    for table_name, column_name in SECRETS:
        table = sa.table(table_name, sa.column("id"), sa.column(column_name, sa.Text()))
        column = table.c[column_name]
        rows = bind.execute(sa.select(table.c.id, column).where(column.is_not(None))).all()
        for row_id, value in rows:
            keyring = keyring or _keyring()
            if encrypting:
                if keyring.can_decrypt(value):
                    continue
                new = keyring.encrypt(value)
            else:
                new = keyring.decrypt(value)
            bind.execute(table.update().where(table.c.id == row_id).values({column_name: new}))


def upgrade() -> None:
    _rewrite(encrypting=True)


def downgrade() -> None:
    _rewrite(encrypting=False)
