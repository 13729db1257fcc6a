"""Schema management through Alembic, which owns the schema on every backend."""

from __future__ import annotations

from importlib.resources import files
from typing import TYPE_CHECKING

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, text

if TYPE_CHECKING:
    from crm_core.encryption.keyring import Keyring


# Search structures made by migrations 0020 and 0021 and kept out of the models: FTS5 tables
# (and the shadow tables SQLite keeps for them), expression indexes, the table of words.
_SEARCH_PREFIXES = (
    "ix_search_",
    "contacts_fts",
    "customers_fts",
    "support_cases_fts",
    "search_words",
)


def include_object(
    obj: object, name: str | None, type_: str, reflected: bool, compare_to: object
) -> bool:
    """Whether autogenerate compares this object: not the search structures of 0020 and 0021."""
    return not (reflected and name is not None and name.startswith(_SEARCH_PREFIXES))


class MigrationError(RuntimeError):
    """A migration could not run safely, or would have broken the data; nothing was changed."""


def sqlite_replace_in_schema(connection: Connection, table: str, old: str, new: str) -> None:
    """Edit a SQLite table's stored CREATE statement in place, for a migration
    (https://sqlite.org/lang_altertable.html, "Making Other Kinds Of Table Schema Changes"):
    only for changes every row already meets, such as widening a CHECK."""
    sql = connection.execute(
        text("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = :name"),
        {"name": table},
    ).scalar_one()
    if sql.count(old) != 1:
        raise RuntimeError(f"{table}: expected {old!r} once in its schema")
    version = connection.exec_driver_sql("PRAGMA schema_version").scalar_one()
    connection.exec_driver_sql("PRAGMA writable_schema = ON")
    connection.execute(
        text("UPDATE sqlite_master SET sql = :sql WHERE type = 'table' AND name = :name"),
        {"sql": sql.replace(old, new), "name": table},
    )
    connection.exec_driver_sql(f"PRAGMA schema_version = {int(version) + 1}")
    connection.exec_driver_sql("PRAGMA writable_schema = OFF")


def alembic_config(
    url: str | None = None,
    *,
    connection: Connection | None = None,
    keyring: Keyring | None = None,
) -> Config:
    """An Alembic configuration for this package's migrations.

    ``keyring`` is what data migrations encrypt secrets under; without one they
    use the configured keys (``Keyring.from_settings``), as the application does.
    """
    cfg = Config()
    cfg.set_main_option("script_location", str(files("crm_core") / "migrations"))
    if url:
        # ConfigParser interpolation would read "%" in a password as a directive.
        cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    if connection is not None:
        cfg.attributes["connection"] = connection
    if keyring is not None:
        cfg.attributes["keyring"] = keyring
    return cfg


def upgrade(
    url: str | None = None, *, revision: str = "head", keyring: Keyring | None = None
) -> None:
    """Bring the database at ``url`` (default: the configured one) up to ``revision``."""
    command.upgrade(alembic_config(url, keyring=keyring), revision)


def current_heads(connection: Connection) -> set[str]:
    """The revisions the database at ``connection`` is at."""
    from alembic.runtime.migration import MigrationContext

    return set(MigrationContext.configure(connection).get_current_heads())


def downgrade(url: str | None = None, *, revision: str, keyring: Keyring | None = None) -> None:
    """Take the database at ``url`` down to ``revision`` (``base`` removes everything)."""
    command.downgrade(alembic_config(url, keyring=keyring), revision)
