"""Re-encrypting every secret at rest under the newest key (``crm secrets rotate-key``).

The columns are found by their type, so a secret column added later is rotated
too. Values are read and written raw (as the tokens they are), decrypted and
re-encrypted with the keyring given, in the caller's transaction: all rows
move to the new key, or, if one does not decrypt, none do.
"""

from __future__ import annotations

from sqlalchemy import Column, MetaData, String, select, type_coerce
from sqlalchemy.orm import Session

from crm_core.encryption.keyring import Keyring, UndecryptableSecret
from crm_core.encryption.types import EncryptedString


def encrypted_columns(metadata: MetaData) -> list[Column[str]]:
    """Every column of ``metadata`` that holds a secret, in table order."""
    return [
        column
        for table in metadata.sorted_tables
        for column in table.columns
        if isinstance(column.type, EncryptedString)
    ]


def rotate_key(session: Session, *, keyring: Keyring, metadata: MetaData) -> dict[str, int]:
    """Re-encrypt every stored secret under ``keyring``'s newest key; rows per column.

    ``UndecryptableSecret`` (naming the row) if a value opens under no key of
    ``keyring``; the caller's transaction should then roll back.
    """
    counts: dict[str, int] = {}
    for column in encrypted_columns(metadata):
        table = column.table
        (key,) = table.primary_key.columns
        raw = type_coerce(column, String())
        rows = session.execute(select(key, raw).where(column.is_not(None)).order_by(key)).all()
        for row_id, token in rows:
            try:
                rotated = keyring.rotate(token)
            except UndecryptableSecret as exc:
                raise UndecryptableSecret(f"{table.name} {row_id}: {exc}") from None
            session.execute(
                table.update()
                .where(key == row_id)
                .values({column.name: type_coerce(rotated, String())})
            )
        counts[f"{table.name}.{column.name}"] = len(rows)
    return counts
