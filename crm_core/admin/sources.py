"""Sources as admins change them: add, set the mapping, rotate the secret, enable and
disable, each checked against the ``sources`` permission and recorded in the audit log.

A secret never reaches the log: a new or rotated one is recorded as ``<redacted>``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from sqlalchemy.orm import Session

from crm_core.editing.records import snapshot
from crm_core.ingestion import services
from crm_core.ingestion.models import Source
from crm_core.people import audit
from crm_core.people.permissions import Actor, Permission

ENTITY = "source"
AUDITED = (
    "name",
    "provider",
    "description",
    "enabled",
    "rate_limit_per_minute",
    "allowed_origins",
    "redirect_url",
    "mapping",
    # A public key is no secret: it is recorded as it is.
    "public_key",
)
_SECRET_CHANGED = {"secret": {"before": audit.REDACTED, "after": audit.REDACTED}}


def create_source(
    session: Session,
    *,
    actor: Actor,
    name: str,
    description: str | None = None,
    rate_limit_per_minute: int | None = None,
    provider: str = "standard",
    secret: str | None = None,
    allowed_origins: Sequence[str] = (),
    redirect_url: str | None = None,
    mapping: dict[str, Any] | None = None,
    public_key: str | None = None,
) -> tuple[Source, str | None]:
    """A new source and its first secret (``services.create_source``)."""
    actor.require(Permission.SOURCES)
    source, new_secret = services.create_source(
        session,
        name=name,
        description=description,
        rate_limit_per_minute=rate_limit_per_minute,
        provider=provider,
        secret=secret,
        allowed_origins=allowed_origins,
        redirect_url=redirect_url,
        mapping=mapping,
        public_key=public_key,
    )
    changes = audit.created(snapshot(source, AUDITED))
    if new_secret is not None:
        changes["secret"] = {"before": None, "after": audit.REDACTED}
    audit.record(
        session, actor=actor, entity=ENTITY, entity_id=source.id, action="create", changes=changes
    )
    return source, new_secret


def _update(session: Session, actor: Actor, source: Source, before: dict[str, Any]) -> None:
    changes = audit.changes_between(before, snapshot(source, AUDITED))
    if changes:
        audit.record(
            session,
            actor=actor,
            entity=ENTITY,
            entity_id=source.id,
            action="update",
            changes=changes,
        )


def set_source_mapping(
    session: Session, *, actor: Actor, name: str, mapping: dict[str, Any] | None
) -> Source:
    """Read the source's requests with a new mapping (``services.set_source_mapping``)."""
    actor.require(Permission.SOURCES)
    before = snapshot(services.get_source(session, name=name), AUDITED)
    source = services.set_source_mapping(session, name=name, mapping=mapping)
    _update(session, actor, source, before)
    return source


def set_source_public_key(session: Session, *, actor: Actor, name: str, public_key: str) -> Source:
    """Verify the source's signed requests with a new public key
    (``services.set_source_public_key``)."""
    actor.require(Permission.SOURCES)
    before = snapshot(services.get_source(session, name=name), AUDITED)
    source = services.set_source_public_key(session, name=name, public_key=public_key)
    _update(session, actor, source, before)
    return source


def set_source_enabled(session: Session, *, actor: Actor, name: str, enabled: bool) -> Source:
    """Accept or refuse the source's requests (``services.set_source_enabled``)."""
    actor.require(Permission.SOURCES)
    before = snapshot(services.get_source(session, name=name), AUDITED)
    source = services.set_source_enabled(session, name=name, enabled=enabled)
    _update(session, actor, source, before)
    return source


def rotate_secret(
    session: Session,
    *,
    actor: Actor,
    name: str,
    grace: dt.timedelta,
    secret: str | None = None,
) -> str:
    """Give the source a new secret (``services.rotate_secret``); the entry says only that
    it changed, and until when the old ones verify."""
    actor.require(Permission.SOURCES)
    new_secret = services.rotate_secret(session, name=name, grace=grace, secret=secret)
    source = services.get_source(session, name=name)
    changes = {**_SECRET_CHANGED, "grace_seconds": {"before": None, "after": grace.total_seconds()}}
    audit.record(
        session, actor=actor, entity=ENTITY, entity_id=source.id, action="update", changes=changes
    )
    return new_secret
