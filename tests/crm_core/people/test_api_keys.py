"""API keys: digests only, scopes (read by default), keys of users capped by the role."""

from __future__ import annotations

import hashlib

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from crm_core.errors import InvalidInput
from crm_core.people import api_keys, users
from crm_core.people.models import ApiKey, AuditEntry
from crm_core.people.permissions import Actor, Permission, PermissionDenied
from tests.factories import UserFactory

OPERATOR = Actor.operator("tests")


def test_api_keys_are_stored_only_as_digests(session: Session) -> None:
    api_key, key = api_keys.create_api_key(session, actor=OPERATOR, name="ops")
    assert key.startswith("crm_")
    assert key not in (api_key.key_hash, api_key.prefix)
    assert api_key.key_hash == hashlib.sha256(key.encode()).hexdigest()
    actor = api_keys.authenticate_api_key(session, key=key)
    assert actor is not None
    assert (actor.kind, actor.id) == ("api_key", api_key.id)
    assert api_key.last_used_at is not None
    assert api_keys.authenticate_api_key(session, key=key + "x") is None
    api_keys.revoke_api_key(session, actor=OPERATOR, name="ops")
    assert api_keys.authenticate_api_key(session, key=key) is None
    with pytest.raises(api_keys.ApiKeyExists):
        api_keys.create_api_key(session, actor=OPERATOR, name="ops")
    assert session.scalar(select(func.count()).select_from(ApiKey)) == 1


def test_a_new_key_reads_only_unless_told_otherwise(session: Session) -> None:
    reader, key = api_keys.create_api_key(session, actor=OPERATOR, name="reader")
    assert reader.scopes == ["read"]
    actor = api_keys.authenticate_api_key(session, key=key)
    assert actor is not None
    assert actor.permissions == {Permission.READ}
    writer, _ = api_keys.create_api_key(
        session, actor=OPERATOR, name="writer", scopes=["write", "read", "write"]
    )
    assert writer.scopes == ["read", "write"]


def test_an_unknown_scope_is_a_field_error(session: Session) -> None:
    with pytest.raises(InvalidInput) as refused:
        api_keys.create_api_key(session, actor=OPERATOR, name="k", scopes=["root"])
    assert refused.value.errors[0].field == "scope"


def test_a_users_key_follows_the_role_and_dies_with_the_user(session: Session) -> None:
    UserFactory(email="ann@example.com", role="viewer")
    _, key = api_keys.create_api_key(
        session, actor=OPERATOR, name="ann", scopes=["read", "write"], user_email="ann@example.com"
    )
    actor = api_keys.authenticate_api_key(session, key=key)
    assert actor is not None
    assert actor.permissions == {Permission.READ}
    users.set_role(session, actor=OPERATOR, email="ann@example.com", role="agent")
    actor = api_keys.authenticate_api_key(session, key=key)
    assert actor is not None
    assert actor.permissions == {
        Permission.READ,
        Permission.WRITE,
        Permission.ASSIGN,
    }
    users.disable_user(session, actor=OPERATOR, email="ann@example.com")
    assert api_keys.authenticate_api_key(session, key=key) is None
    with pytest.raises(InvalidInput, match="is disabled"):
        api_keys.create_api_key(session, actor=OPERATOR, name="late", user_email="ann@example.com")
    with pytest.raises(users.UserNotFound):
        api_keys.create_api_key(session, actor=OPERATOR, name="x", user_email="bob@example.com")


def test_managing_keys_needs_the_admin_scope_and_is_audited(session: Session) -> None:
    writer = Actor.for_key(key_id=1, name="w", scopes=["read", "write", "send"])
    with pytest.raises(PermissionDenied, match="'admin' scope"):
        api_keys.create_api_key(session, actor=writer, name="k")
    admin = Actor.for_key(key_id=2, name="a", scopes=["admin"])
    created, _ = api_keys.create_api_key(session, actor=admin, name="k", scopes=["send"])
    api_keys.revoke_api_key(session, actor=admin, name="k")
    entries = session.scalars(
        select(AuditEntry)
        .where(AuditEntry.entity == "api_key", AuditEntry.entity_id == created.id)
        .order_by(AuditEntry.id)
    ).all()
    assert [(e.actor, e.action) for e in entries] == [
        ("api_key:a", "create"),
        ("api_key:a", "update"),
    ]
    assert entries[0].changes["scopes"] == {"before": None, "after": ["send"]}
