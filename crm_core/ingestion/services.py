"""Ingestion services: sources and their secrets, API keys, and the inbox itself.

Every function takes a ``Session`` and never commits: the request, the task or
the command that calls it owns the transaction.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, NotRequired, TypedDict, Unpack, cast

from sqlalchemy import Connection, Table, and_, bindparam, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from crm_core.db import UTCDateTime, utcnow
from crm_core.errors import FieldError, InvalidInput
from crm_core.ingestion.models import (
    ApiKey,
    EventKind,
    EventStatus,
    InboxEvent,
    ProviderName,
    Source,
    SourceSecret,
)
from crm_core.ingestion.validation import Validated, validate_payload
from crm_core.providers import PROVIDERS, Provider

__all__ = [
    "API_KEY_PREFIX",
    "ApiKeyExists",
    "ApiKeyNotFound",
    "FieldError",
    "SourceCredentials",
    "SourceExists",
    "SourceNotFound",
    "StoredEvent",
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
    "store_event",
    "validate_payload",
]

API_KEY_PREFIX = "crm_"
MAX_SECRET = 255
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
    provider: str = ProviderName.STANDARD,
    secret: str | None = None,
) -> tuple[Source, str]:
    """Create a sending system; returns it and its first secret.

    A provider that issues its own signing secret (Shopify, Stripe, …) needs
    ``secret``; the others get a generated one (a ``whsec_`` secret, Freshdesk's
    ``user:password``) and refuse one given.
    """
    chosen = PROVIDERS.get(provider)
    if chosen is None:
        raise _invalid("provider", f"unknown provider {provider!r}"[:120])
    secret = _new_secret(chosen, secret)
    if session.scalar(select(Source.id).where(Source.name == name)) is not None:
        raise SourceExists(f"source {name!r} already exists")
    source = Source(
        name=name,
        description=description,
        rate_limit_per_minute=rate_limit_per_minute,
        provider=chosen.name.value,
    )
    _add_secret(source, secret)
    session.add(source)
    session.flush()
    return source, secret


def _new_secret(provider: Provider, given: str | None) -> str:
    """The provider's own secret, checked, or a generated one for providers that issue none."""
    if not provider.takes_secret:
        if given is not None:
            raise _invalid("secret", f"{provider.label} sources get a generated secret")
        return provider.new_credentials()
    if not given or not given.strip():
        raise _invalid("secret", f"{provider.label} issues the signing secret: give it")
    if len(given) > MAX_SECRET or not given.isprintable():
        raise _invalid("secret", f"a secret is 1-{MAX_SECRET} printable characters")
    return given


def _invalid(field_name: str, message: str) -> InvalidInput:
    return InvalidInput([FieldError((field_name,), message)])


def _add_secret(source: Source, secret: str, *, created_at: dt.datetime | None = None) -> None:
    """The one place a source's secret is written (``active_secrets`` is where it is read)."""
    source.secrets.append(SourceSecret(secret=secret, created_at=created_at or utcnow()))


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
    session: Session,
    *,
    name: str,
    grace: dt.timedelta,
    now: dt.datetime | None = None,
    secret: str | None = None,
) -> str:
    """Give a source a new secret; the ones in use keep verifying for ``grace``.

    As at creation, a provider that issues its own secret needs the new one given.
    """
    now = now or utcnow()
    source = get_source(session, name=name)
    secret = _new_secret(PROVIDERS[source.provider], secret)
    retire_at = now + grace
    for old in source.secrets:
        if old.expires_at is None or old.expires_at > retire_at:
            old.expires_at = retire_at
    _add_secret(source, secret, created_at=now)
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
    provider: str = ProviderName.STANDARD.value


# Built once: this runs on every webhook request, and building a statement costs
# more CPU than running it.
_SOURCE_CREDENTIALS = (
    select(
        Source.id,
        Source.enabled,
        Source.rate_limit_per_minute,
        Source.provider,
        SourceSecret.secret,
    )
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
    return SourceCredentials(
        first.id, first.enabled, first.rate_limit_per_minute, secrets_, first.provider
    )


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


# --- The inbox ----------------------------------------------------------------------------


@dataclass(frozen=True)
class StoredEvent:
    """The inbox event a request maps to, and whether this call created it (else a redelivery)."""

    id: int
    status: str
    errors: list[Any] | None
    created: bool


_INBOX = cast(Table, InboxEvent.__table__)
EXISTING_EVENT = select(_INBOX.c.id, _INBOX.c.status, _INBOX.c.errors).where(
    _INBOX.c.source_id == bindparam("source_id"), _INBOX.c.webhook_id == bindparam("webhook_id")
)


@lru_cache(maxsize=4)
def insert_new_event(dialect: str) -> Any:
    """INSERT … ON CONFLICT DO NOTHING RETURNING, built once per backend (it runs per request).

    ON CONFLICT DO NOTHING waits for a concurrent insert of the same key to
    commit, then yields no row; ``EXISTING_EVENT`` then finds the winner's row.
    """
    insert: Any = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}[dialect]
    return (
        insert(_INBOX)
        .on_conflict_do_nothing(index_elements=["source_id", "webhook_id"])
        .returning(_INBOX.c.id, _INBOX.c.status, _INBOX.c.errors)
    )


class NewEvent(TypedDict):
    """A request as received, in the words every writer of the inbox takes."""

    source_id: int
    kind: EventKind | str
    webhook_id: str
    content_type: str
    body: bytes
    headers: NotRequired[dict[str, Any] | None]
    errors: NotRequired[list[FieldError] | None]
    # The provider's own topic or event type; ``ignored`` for one the platform does not handle.
    topic: NotRequired[str | None]
    ignored: NotRequired[bool]


def new_event_values(**event: Unpack[NewEvent]) -> dict[str, Any]:
    """The inbox row of a request just received: ``invalid`` with its ``errors`` if any."""
    errors = event.get("errors")
    status = EventStatus.INVALID if errors else EventStatus.RECEIVED
    if event.get("ignored") and not errors:
        status = EventStatus.IGNORED
    return {
        "source_id": event["source_id"],
        "kind": str(event["kind"]),
        "webhook_id": event["webhook_id"],
        "topic": event.get("topic"),
        "content_type": event["content_type"][:255],
        "headers": event.get("headers") or {},
        "body": event["body"],
        "status": str(status),
        "attempts": 0,
        "errors": [e.as_dict() for e in errors] if errors else None,
        "error": "the payload failed validation" if errors else None,
        "received_at": utcnow(),
    }


def store_event(session: Session | Connection, **event: Unpack[NewEvent]) -> StoredEvent:
    """Insert a request into the inbox once per (source, webhook-id); race-safe.

    With ``errors`` the event is stored as ``invalid``. A redelivery, even one
    racing the first delivery, inserts nothing and returns the first event.
    Takes a Core connection too. (The web intake writes through
    ``crm_core.ingestion.inbox``, which runs the same statements.)
    """
    values = new_event_values(**event)
    bind = session if isinstance(session, Connection) else session.get_bind()
    row = session.execute(insert_new_event(bind.dialect.name), values).first()
    if row is not None:
        return StoredEvent(row.id, row.status, row.errors, created=True)
    key = {"source_id": event["source_id"], "webhook_id": event["webhook_id"]}
    existing = session.execute(EXISTING_EVENT, key).one()
    return StoredEvent(existing.id, existing.status, existing.errors, created=False)
