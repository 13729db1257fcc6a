"""API keys: bearer keys with scopes, stored only as SHA-256 digests.

A key has one or more scopes (``read``, ``write``, ``send``, ``admin``); a new key is
``read`` unless told otherwise. A key may belong to a user: it then never does more than
the user's role allows, and stops working when the user is disabled.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from crm_core.db import utcnow
from crm_core.errors import FieldError, InvalidInput
from crm_core.people import audit
from crm_core.people.models import ApiKey, User
from crm_core.people.permissions import DEFAULT_SCOPES, Actor, Permission, Scope
from crm_core.people.users import get_user

API_KEY_PREFIX = "crm_"
_KEY_PREFIX_SHOWN = 12


class ApiKeyNotFound(LookupError):
    """No API key has this name."""


class ApiKeyExists(ValueError):
    """An API key with this name already exists."""


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def parse_scopes(raw: Iterable[str]) -> list[str]:
    """Known scopes, deduplicated in their canonical order; an unknown one is a field error."""
    given = set(raw)
    unknown = sorted(given - {s.value for s in Scope})
    if unknown:
        allowed = ", ".join(s.value for s in Scope)
        raise InvalidInput([FieldError(("scope",), f"unknown {unknown!r}; one of {allowed}")])
    return [s.value for s in Scope if s.value in given] or [s.value for s in DEFAULT_SCOPES]


def create_api_key(
    session: Session,
    *,
    actor: Actor,
    name: str,
    scopes: Iterable[str] = (),
    user_email: str | None = None,
) -> tuple[ApiKey, str]:
    """Create a key; returns it and the key itself, which is stored only hashed."""
    actor.require(Permission.KEYS)
    chosen = parse_scopes(scopes)
    if not 1 <= len(name) <= 80:
        raise InvalidInput([FieldError(("name",), "an API key name is 1-80 characters")])
    if session.scalar(select(ApiKey.id).where(ApiKey.name == name)) is not None:
        raise ApiKeyExists(f"API key {name!r} already exists")
    owner = get_user(session, email=user_email) if user_email is not None else None
    if owner is not None and owner.disabled_at is not None:
        raise InvalidInput([FieldError(("user",), f"user {owner.email!r} is disabled")])
    key = API_KEY_PREFIX + secrets.token_urlsafe(32)
    api_key = ApiKey(
        name=name,
        prefix=key[:_KEY_PREFIX_SHOWN],
        key_hash=_digest(key),
        scopes=chosen,
        user_id=owner.id if owner else None,
    )
    session.add(api_key)
    session.flush()
    after = {"name": name, "scopes": chosen, "user": owner.email if owner else None}
    audit.record(
        session,
        actor=actor,
        entity="api_key",
        entity_id=api_key.id,
        action="create",
        changes=audit.changes_between({}, after),
    )
    return api_key, key


def authenticate_api_key(
    session: Session, *, key: str, now: dt.datetime | None = None
) -> Actor | None:
    """The actor of the unrevoked key matching ``key``, noting its use; None if there is none.

    The lookup is by SHA-256 digest, so the stored value reveals nothing and a timing
    difference could only reveal digests, not keys. A key whose user is disabled is
    refused like a revoked one.
    """
    if not key.startswith(API_KEY_PREFIX) or len(key) > 200:
        return None
    found = session.execute(
        select(ApiKey, User)
        .outerjoin(User, User.id == ApiKey.user_id)
        .where(ApiKey.key_hash == _digest(key), ApiKey.revoked_at.is_(None))
    ).one_or_none()
    if found is None:
        return None
    api_key, user = found
    if user is not None and user.disabled_at is not None:
        return None
    api_key.last_used_at = now or utcnow()
    return Actor.for_key(
        key_id=api_key.id,
        name=api_key.name,
        scopes=api_key.scopes,
        user_id=user.id if user else None,
        role=user.role if user else None,
    )


def list_api_keys(session: Session, *, actor: Actor) -> list[tuple[ApiKey, str | None]]:
    """Every API key, revoked ones included, by name, each with its user's address."""
    actor.require(Permission.KEYS)
    rows = session.execute(
        select(ApiKey, User.email).outerjoin(User, User.id == ApiKey.user_id).order_by(ApiKey.name)
    )
    return [(key, email) for key, email in rows]


def revoke_api_key(
    session: Session, *, actor: Actor, name: str, now: dt.datetime | None = None
) -> ApiKey:
    """Stop a key from working; it stays listed."""
    actor.require(Permission.KEYS)
    api_key = session.scalar(select(ApiKey).where(ApiKey.name == name))
    if api_key is None:
        raise ApiKeyNotFound(f"no API key {name!r}")
    if api_key.revoked_at is None:
        api_key.revoked_at = now or utcnow()
        audit.record(
            session,
            actor=actor,
            entity="api_key",
            entity_id=api_key.id,
            action="update",
            changes=audit.changes_between({"revoked_at": None}, {"revoked_at": api_key.revoked_at}),
        )
    session.flush()
    return api_key
