"""Ingestion services: sources and their secrets, and the inbox itself.

Every function takes a ``Session`` and never commits: the request, the task or
the command that calls it owns the transaction.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, and_, bindparam, or_, select
from sqlalchemy.orm import Session

from crm_core.db import UTCDateTime, utcnow
from crm_core.errors import FieldError, InvalidInput
from crm_core.ingestion.models import Source, SourceSecret
from crm_core.ingestion.validation import Validated, validate_payload
from crm_core.payloads.kinds import ProviderName
from crm_core.providers import PROVIDERS, Provider
from crm_core.providers.form import origin_of

__all__ = [
    "FieldError",
    "SourceCredentials",
    "SourceExists",
    "SourceNotFound",
    "Validated",
    "active_secrets",
    "create_source",
    "get_source",
    "list_sources",
    "rotate_secret",
    "set_source_enabled",
    "set_source_mapping",
    "set_source_public_key",
    "source_credentials",
    "validate_payload",
]

MAX_SECRET = 255
MAX_URL = 2000


class SourceNotFound(LookupError):
    """No source has this name."""


class SourceExists(ValueError):
    """A source with this name already exists."""


# --- Sources ----------------------------------------------------------------------------


def create_source(
    session: Session,
    *,
    name: str,
    description: str | None = None,
    rate_limit_per_minute: int | None = None,
    provider: str = ProviderName.STANDARD,
    secret: str | None = None,
    allowed_origins: Sequence[str] = (),
    redirect_url: str | None = None,
    mapping: dict[str, Any] | None = None,
    public_key: str | None = None,
) -> tuple[Source, str | None]:
    """Create a sending system; returns it and its first secret (``None`` for a web form).

    ``mapping`` is how the provider reads it beyond its defaults (a custom source's
    mapping file, parsed; Typeform's refs), checked by the provider and stored.

    A provider that issues its own signing secret (Shopify, Stripe, …) needs
    ``secret``; the others get a generated one (a ``whsec_`` secret, Freshdesk's
    ``user:password``) and refuse one given. A web form signs nothing: it has
    no secret, and may have the origins allowed to post it and a redirect.
    """
    chosen = PROVIDERS.get(provider)
    if chosen is None:
        raise _invalid("provider", f"unknown provider {provider!r}"[:120])
    origins, redirect = _form_settings(chosen, allowed_origins, redirect_url)
    new_secret = _new_secret(chosen, secret) if chosen.signed else _no_secret(chosen, secret)
    stored_mapping = chosen.checked_mapping(mapping)
    stored_key = chosen.checked_public_key(public_key) if public_key is not None else None
    if session.scalar(select(Source.id).where(Source.name == name)) is not None:
        raise SourceExists(f"source {name!r} already exists")
    source = Source(
        name=name,
        description=description,
        rate_limit_per_minute=rate_limit_per_minute,
        provider=chosen.name.value,
        allowed_origins=origins,
        redirect_url=redirect,
        mapping=stored_mapping,
        public_key=stored_key,
    )
    if new_secret is not None:
        _add_secret(source, new_secret)
    session.add(source)
    session.flush()
    return source, new_secret


def _no_secret(provider: Provider, given: str | None) -> str | None:
    """Nothing, for a provider that signs nothing; refuses a secret given."""
    if given is not None:
        raise _invalid("secret", f"{provider.label} sources sign nothing: they have no secret")
    return None


def _form_settings(
    provider: Provider, origins: Sequence[str], redirect: str | None
) -> tuple[list[str], str | None]:
    """The checked origins and redirect of a web form's source; other providers have none."""
    if provider.name != ProviderName.FORM:
        if origins or redirect:
            raise _invalid("origin", "only a web form's source has origins and a redirect")
        return [], None
    checked: list[str] = []
    for given in origins:
        origin = origin_of(given)
        if origin is None or given.strip().rstrip("/").lower() != origin:
            raise _invalid("origin", f"{given[:80]!r} is not an origin like https://example.com")
        if origin not in checked:
            checked.append(origin)
    if redirect is not None and (
        origin_of(redirect) is None or len(redirect) > MAX_URL or not redirect.isprintable()
    ):
        raise _invalid("redirect", "the redirect is an absolute http(s) URL")
    return checked, redirect


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


def set_source_mapping(session: Session, *, name: str, mapping: dict[str, Any] | None) -> Source:
    """Give a source a new mapping (checked by its provider); events stored before it are
    read with it when they are replayed."""
    source = get_source(session, name=name)
    source.mapping = PROVIDERS[source.provider].checked_mapping(mapping)
    session.flush()
    return source


def set_source_public_key(session: Session, *, name: str, public_key: str) -> Source:
    """Give a source the public key its provider's signatures are verified with (checked by
    the provider); it verifies at once, the old key no longer."""
    source = get_source(session, name=name)
    source.public_key = PROVIDERS[source.provider].checked_public_key(public_key)
    session.flush()
    return source


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
    provider = PROVIDERS[source.provider]
    if not provider.signed:
        raise _invalid("name", f"{provider.label} sources sign nothing: there is no secret")
    secret = _new_secret(provider, secret)
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
    # A web form's: the origins allowed to post (empty: any) and where browsers go after.
    allowed_origins: list[str] = field(default_factory=list)
    redirect_url: str | None = None
    # The provider's reading of this source beyond its defaults (``Source.mapping``).
    mapping: dict[str, Any] | None = None
    # The public key that verifies the provider's signatures (``Source.public_key``).
    public_key: str | None = None


# Built once: this runs on every webhook request, and building a statement costs
# more CPU than running it.
_SOURCE_CREDENTIALS = (
    select(
        Source.id,
        Source.enabled,
        Source.rate_limit_per_minute,
        Source.provider,
        Source.allowed_origins,
        Source.redirect_url,
        Source.mapping,
        Source.public_key,
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
        first.id,
        first.enabled,
        first.rate_limit_per_minute,
        secrets_,
        first.provider,
        list(first.allowed_origins or []),
        first.redirect_url,
        first.mapping,
        first.public_key,
    )
