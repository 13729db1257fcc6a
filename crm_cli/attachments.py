"""``crm attachments``: the blob store that keeps e-mail attachments."""

from __future__ import annotations

import click

from crm_cli.session import session_factory
from crm_core.attachments.services import sweep_blobs
from crm_core.blobs.configured import blob_store_from_settings
from crm_core.config import get_settings
from crm_core.errors import first_line


@click.group()
def attachments() -> None:
    """E-mail attachments, kept once each by SHA-256 (CRM_BLOB_URL)."""


@attachments.command("sweep")
def sweep() -> None:
    """Delete every stored blob that no attachment names any more.

    Blobs are deleted right after the record they belong to; this removes what a crash
    between the two, or a rolled-back receive, left behind. Safe while mail arrives.
    """
    from botocore.exceptions import BotoCoreError, ClientError

    store = blob_store_from_settings(get_settings())
    try:
        with session_factory() as sessions:
            deleted = sweep_blobs(sessions, store)
    except (BotoCoreError, ClientError, OSError) as exc:
        raise click.ClickException(f"{store.describe()}: {first_line(str(exc))}") from None
    click.echo(f"{len(deleted)} unreferenced blobs deleted from {store.describe()}")
