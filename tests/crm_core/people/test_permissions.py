"""Roles, scopes and the actor: what each may do, and what a refusal names."""

from __future__ import annotations

import pytest

from crm_core.people.permissions import (
    PERMISSION_SCOPE,
    Actor,
    Permission,
    PermissionDenied,
    Role,
    Scope,
)

P = Permission

# The role matrix of the product: viewer reads; agent also writes CRM data, replies,
# assigns; admin also campaigns, sources, keys, users, mailboxes, subscriptions, audit, metrics.
ROLE_MATRIX = {
    Role.VIEWER: {P.READ},
    Role.AGENT: {P.READ, P.WRITE, P.REPLY, P.ASSIGN},
    Role.ADMIN: set(Permission),
}
SCOPE_MATRIX = {
    Scope.READ: {P.READ},
    Scope.WRITE: {P.WRITE, P.ASSIGN},
    Scope.SEND: {P.REPLY, P.CAMPAIGNS},
    Scope.ADMIN: {
        P.SOURCES,
        P.KEYS,
        P.USERS,
        P.MAILBOXES,
        P.SUBSCRIPTIONS,
        P.AUDIT,
        P.PERSONAL_DATA,
        P.METRICS,
    },
}


@pytest.mark.parametrize("role", list(Role))
@pytest.mark.parametrize("permission", list(Permission))
def test_each_role_is_allowed_exactly_its_permissions(role: Role, permission: Permission) -> None:
    actor = Actor.for_user(user_id=1, email="a@example.com", role=role)
    assert actor.allows(permission) is (permission in ROLE_MATRIX[role])
    if permission in ROLE_MATRIX[role]:
        actor.require(permission)
    else:
        with pytest.raises(PermissionDenied, match=f"role '{role.value}'"):
            actor.require(permission)


@pytest.mark.parametrize("scope", list(Scope))
@pytest.mark.parametrize("permission", list(Permission))
def test_each_scope_grants_exactly_its_permissions(scope: Scope, permission: Permission) -> None:
    actor = Actor.for_key(key_id=1, name="k", scopes=[scope.value])
    assert actor.allows(permission) is (permission in SCOPE_MATRIX[scope])
    if permission not in SCOPE_MATRIX[scope]:
        with pytest.raises(PermissionDenied) as refused:
            actor.require(permission)
        assert refused.value.scope == PERMISSION_SCOPE[permission]
        assert f"lacks the {PERMISSION_SCOPE[permission].value!r} scope" in str(refused.value)


@pytest.mark.parametrize("role", list(Role))
def test_a_users_key_never_exceeds_the_role(role: Role) -> None:
    every_scope = [s.value for s in Scope]
    actor = Actor.for_key(key_id=1, name="k", scopes=every_scope, user_id=7, role=role)
    assert actor.permissions == ROLE_MATRIX[role]
    # ... nor its own scopes: an admin's read key only reads.
    admins_reader = Actor.for_key(key_id=2, name="r", scopes=["read"], user_id=7, role="admin")
    assert admins_reader.permissions == {P.READ}


def test_an_agents_send_key_replies_but_runs_no_campaign() -> None:
    actor = Actor.for_key(key_id=1, name="k", scopes=["send"], user_id=3, role="agent")
    actor.require(P.REPLY)
    with pytest.raises(PermissionDenied) as refused:
        actor.require(P.CAMPAIGNS)
    # The key has the scope; it is the role that refuses, and the message says so.
    assert "role 'agent'" in str(refused.value)
    assert refused.value.scope is Scope.SEND


def test_the_operator_may_do_everything() -> None:
    assert Actor.operator("root").permissions == frozenset(Permission)
    assert Actor.operator("root").label == "operator:root"
