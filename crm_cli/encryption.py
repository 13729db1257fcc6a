"""``crm secrets``: the keys that secrets at rest are encrypted under."""

from __future__ import annotations

import click

from crm_cli.session import transaction
from crm_core.config import get_settings
from crm_core.encryption.keyring import Keyring
from crm_core.encryption.services import rotate_key


@click.group("secrets")
def secrets_group() -> None:
    """Encryption of the stored secrets (signing secrets, subscription secrets, passwords)."""


@secrets_group.command("generate-key")
def generate_key() -> None:
    """Print a new random key for CRM_ENCRYPTION_KEYS (put it first, keep the old ones after)."""
    click.echo(Keyring.generate_key())


@secrets_group.command("rotate-key")
def rotate() -> None:
    """Re-encrypt every stored secret under the newest key of CRM_ENCRYPTION_KEYS.

    All or nothing: if one secret opens under no configured key, nothing changes.
    Afterwards the older keys can be removed from CRM_ENCRYPTION_KEYS.
    """
    from crm_core.models import metadata

    keyring = Keyring.from_settings(get_settings())
    with transaction() as session:
        counts = rotate_key(session, keyring=keyring, metadata=metadata)
    for column, count in counts.items():
        click.echo(f"{column}\t{count} re-encrypted")
    click.echo(f"{sum(counts.values())} secrets now under the newest key")
