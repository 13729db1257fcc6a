"""Ingestion services: sources and their secrets, API keys, and the inbox itself.

Every function takes a ``Session`` and never commits: the request, the task or
the command that calls it owns the transaction.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass

from sqlalchemy import Connection, and_, bindparam, or_, select
from sqlalchemy.orm import Session

from crm_core.db import UTCDateTime, utcnow
from crm_core.errors import FieldError
from crm_core.ingestion.models import (
    ApiKey,
    Source,
    SourceSecret,
)
from crm_core.ingestion.signing import generate_secret
from crm_core.ingestion.validation import Validated, validate_payload

__all__ = [
    "API_KEY_PREFIX",
    "ApiKeyExists",
    "ApiKeyNotFound",
    "FieldError",
    "SourceCredentials",
    "SourceExists",
    "SourceNotFound",
    "Validated",
    "active_secrets",
    "authenticate_api_key",
    "create_api_key",
    "create_source",
    "get_source",
    "list_api_keys",
    "list_sources",
    "revoke_api_key",
    "rotate_secret",
    "set_source_enabled",
    "source_credentials",
    "validate_payload",
]

API_KEY_PREFIX = "crm_"
_KEY_PREFIX_SHOWN = 12


class SourceNotFound(LookupError):
    """No source has this name."""


class SourceExists(ValueError):
    """A source with this name already exists."""


class ApiKeyNotFound(LookupError):
    """No API key has this name."""


class ApiKeyExists(ValueError):
    """An API key with this name already exists."""


# --- Sources ----------------------------------------------------------------------------


def create_source(
    session: Session,
    *,
    name: str,
    description: str | None = None,
    rate_limit_per_minute: int | None = None,
) -> tuple[Source, str]:
    """Create a sending system; returns it and its first signing secret."""
    if session.scalar(select(Source.id).where(Source.name == name)) is not None:
        raise SourceExists(f"source {name!r} already exists")
    secret = generate_secret()
    source = Source(name=name, description=description, rate_limit_per_minute=rate_limit_per_minute)
    source.secrets.append(SourceSecret(secret=secret))
    session.add(source)
    session.flush()
    return source, secret


def get_source(session: Session, *, name: str) -> Source:
    """The source called ``name``; ``SourceNotFound`` otherwise."""
    source = session.scalar(select(Source).where(Source.name == name))
    if source is None:
        raise SourceNotFound(f"no source {name!r}")
    return source


def list_sources(session: Session) -> list[Source]:
    """Every source, by name."""
    return list(session.scalars(select(Source).order_by(Source.name)))


def set_source_enabled(session: Session, *, name: str, enabled: bool) -> Source:
    """Enable or disable a source; a disabled source's requests are refused."""
    source = get_source(session, name=name)
    source.enabled = enabled
    session.flush()
    return source


def rotate_secret(
    session: Session, *, name: str, grace: dt.timedelta, now: dt.datetime | None = None
) -> str:
    """Give a source a new secret; the ones in use keep verifying for ``grace``."""
    now = now or utcnow()
    source = get_source(session, name=name)
    retire_at = now + grace
    for old in source.secrets:
        if old.expires_at is None or old.expires_at > retire_at:
            old.expires_at = retire_at
    secret = generate_secret()
    source.secrets.append(SourceSecret(secret=secret, created_at=now))
    session.flush()
    return secret


def active_secrets(
    session: Session, *, source_id: int, now: dt.datetime | None = None
) -> list[str]:
    """The secrets that verify requests of a source right now, newest first."""
    now = now or utcnow()
    query = (
        select(SourceSecret.secret)
        .where(
            SourceSecret.source_id == source_id,
            or_(SourceSecret.expires_at.is_(None), SourceSecret.expires_at > now),
        )
        .order_by(SourceSecret.id.desc())
    )
    return list(session.scalars(query))


@dataclass(frozen=True)
class SourceCredentials:
    """What verifying a request needs to know about its source."""

    id: int
    enabled: bool
    rate_limit_per_minute: int | None
    secrets: list[str]


# Built once: this runs on every webhook request, and building a statement costs
# more CPU than running it.
_SOURCE_CREDENTIALS = (
    select(Source.id, Source.enabled, Source.rate_limit_per_minute, SourceSecret.secret)
    .outerjoin(
        SourceSecret,
        and_(
            SourceSecret.source_id == Source.id,
            or_(
                SourceSecret.expires_at.is_(None),
                SourceSecret.expires_at > bindparam("now", type_=UTCDateTime()),
            ),
        ),
    )
    .where(Source.name == bindparam("name"))
    .order_by(SourceSecret.id.desc())
)


def source_credentials(
    session: Session | Connection, *, name: str, now: dt.datetime | None = None
) -> SourceCredentials | None:
    """The source ``name`` with its active secrets, in one query; ``None`` if unknown.

    Takes a Core connection too: the intake's hot path does without an ORM session.
    """
    rows = session.execute(_SOURCE_CREDENTIALS, {"name": name, "now": now or utcnow()}).all()
    if not rows:
        return None
    first = rows[0]
    secrets_ = [row.secret for row in rows if row.secret is not None]
    return SourceCredentials(first.id, first.enabled, first.rate_limit_per_minute, secrets_)


# --- API keys -----------------------------------------------------------------------------


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def create_api_key(session: Session, *, name: str) -> tuple[ApiKey, str]:
    """Create a read-API key; returns it and the key itself, which is stored only hashed."""
    if session.scalar(select(ApiKey.id).where(ApiKey.name == name)) is not None:
        raise ApiKeyExists(f"API key {name!r} already exists")
    key = API_KEY_PREFIX + secrets.token_urlsafe(32)
    api_key = ApiKey(name=name, prefix=key[:_KEY_PREFIX_SHOWN], key_hash=_digest(key))
    session.add(api_key)
    session.flush()
    return api_key, key


def authenticate_api_key(
    session: Session, *, key: str, now: dt.datetime | None = None
) -> ApiKey | None:
    """The unrevoked API key matching ``key``, noting its use; ``None`` if there is none.

    The lookup is by SHA-256 digest, so the stored value reveals nothing and a
    timing difference could only reveal digests, not keys.
    """
    if not key.startswith(API_KEY_PREFIX) or len(key) > 200:
        return None
    api_key = session.scalar(
        select(ApiKey).where(ApiKey.key_hash == _digest(key), ApiKey.revoked_at.is_(None))
    )
    if api_key is not None:
        api_key.last_used_at = now or utcnow()
    return api_key


def list_api_keys(session: Session) -> list[ApiKey]:
    """Every API key, revoked ones included, by name."""
    return list(session.scalars(select(ApiKey).order_by(ApiKey.name)))


def revoke_api_key(session: Session, *, name: str, now: dt.datetime | None = None) -> ApiKey:
    """Stop a key from working; it stays listed."""
    api_key = session.scalar(select(ApiKey).where(ApiKey.name == name))
    if api_key is None:
        raise ApiKeyNotFound(f"no API key {name!r}")
    api_key.revoked_at = api_key.revoked_at or now or utcnow()
    session.flush()
    return api_key
