"""Schema management through Alembic, which owns the schema on every backend."""

from __future__ import annotations

from importlib.resources import files
from typing import TYPE_CHECKING

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection

if TYPE_CHECKING:
    from crm_core.encryption.keyring import Keyring


class MigrationError(RuntimeError):
    """A migration could not run safely, or would have broken the data; nothing was changed."""


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
