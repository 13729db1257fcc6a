"""Who may do what: roles for users, scopes for API keys, and the actor a write is done by.

A permission is one thing a write (or a read) needs. Each permission is granted by exactly
one key scope, and by the roles listed in ``ROLE_PERMISSIONS``. An actor's permissions are
fixed when it is resolved (a user's role; a key's scopes, cut down to its user's role when
the key belongs to one), so a service checks a plain value and never reads the database
to decide.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass


class Role(enum.StrEnum):
    VIEWER = "viewer"
    AGENT = "agent"
    ADMIN = "admin"


class Scope(enum.StrEnum):
    READ = "read"
    WRITE = "write"
    SEND = "send"
    ADMIN = "admin"


class Permission(enum.StrEnum):
    READ = "read"
    WRITE = "write"  # CRM data: customers, contacts, follow-ups
    ASSIGN = "assign"
    REPLY = "reply"
    CAMPAIGNS = "campaigns"
    SOURCES = "sources"
    KEYS = "keys"
    USERS = "users"
    MAILBOXES = "mailboxes"
    SUBSCRIPTIONS = "subscriptions"
    AUDIT = "audit"
    # A person's data in bulk: exporting it (a subject access request) or erasing it.
    PERSONAL_DATA = "personal_data"
    METRICS = "metrics"  # the Prometheus exposition: what runs and how busy it is


# The one scope that grants each permission.
PERMISSION_SCOPE: dict[Permission, Scope] = {
    Permission.READ: Scope.READ,
    Permission.WRITE: Scope.WRITE,
    Permission.ASSIGN: Scope.WRITE,
    Permission.REPLY: Scope.SEND,
    Permission.CAMPAIGNS: Scope.SEND,
    Permission.SOURCES: Scope.ADMIN,
    Permission.KEYS: Scope.ADMIN,
    Permission.USERS: Scope.ADMIN,
    Permission.MAILBOXES: Scope.ADMIN,
    Permission.SUBSCRIPTIONS: Scope.ADMIN,
    Permission.AUDIT: Scope.ADMIN,
    Permission.PERSONAL_DATA: Scope.ADMIN,
    Permission.METRICS: Scope.ADMIN,
}

_VIEWER = frozenset({Permission.READ})
_AGENT = _VIEWER | {Permission.WRITE, Permission.ASSIGN, Permission.REPLY}
ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.VIEWER: _VIEWER,
    Role.AGENT: _AGENT,
    Role.ADMIN: frozenset(Permission),
}

DEFAULT_SCOPES = (Scope.READ,)
ALL_SCOPES = tuple(Scope)


def scope_permissions(scopes: Iterable[str]) -> frozenset[Permission]:
    """The permissions a set of key scopes grants."""
    granted = set(scopes)
    return frozenset(p for p, scope in PERMISSION_SCOPE.items() if scope in granted)


class PermissionDenied(Exception):
    """The actor lacks a permission; says which scope or role would grant it."""

    def __init__(self, actor: Actor, permission: Permission) -> None:
        self.actor = actor
        self.permission = permission
        self.scope = PERMISSION_SCOPE[permission]
        super().__init__(str(self))

    def __str__(self) -> str:
        actor = self.actor
        if actor.scopes is not None and self.scope not in actor.scopes:
            return f"This API key lacks the {self.scope.value!r} scope."
        return (
            f"{actor.label} acts with the role {actor.role!r}, which does not allow"
            f" {self.permission.value!r}."
        )


@dataclass(frozen=True)
class Actor:
    """Who does a thing: a user, an API key (perhaps a user's) or an operator at the CLI.

    ``scopes`` is None unless the actor is a key; ``role`` is None unless a user stands
    behind it. ``permissions`` is what it may effectively do.
    """

    kind: str  # "user", "api_key" or "operator"
    id: int | None
    label: str
    permissions: frozenset[Permission]
    role: str | None = None
    scopes: frozenset[str] | None = None
    user_id: int | None = None

    @classmethod
    def operator(cls, name: str) -> Actor:
        """Someone at the command line, with shell access to the database: every permission."""
        return cls(
            kind="operator", id=None, label=f"operator:{name}", permissions=frozenset(Permission)
        )

    @classmethod
    def for_user(cls, *, user_id: int, email: str, role: str) -> Actor:
        """A signed-in user acting with the permissions of their role."""
        return cls(
            kind="user",
            id=user_id,
            label=f"user:{email}",
            permissions=ROLE_PERMISSIONS[Role(role)],
            role=Role(role).value,
            user_id=user_id,
        )

    @classmethod
    def for_key(
        cls,
        *,
        key_id: int,
        name: str,
        scopes: Iterable[str],
        user_id: int | None = None,
        role: str | None = None,
    ) -> Actor:
        """An API key: its scopes' permissions, never more than its user's role allows."""
        scope_set = frozenset(scopes)
        permissions = scope_permissions(scope_set)
        if user_id is not None:
            role = Role(role or Role.VIEWER).value
            permissions &= ROLE_PERMISSIONS[Role(role)]
        return cls(
            kind="api_key",
            id=key_id,
            label=f"api_key:{name}",
            permissions=permissions,
            role=role,
            scopes=scope_set,
            user_id=user_id,
        )

    def allows(self, permission: Permission) -> bool:
        return permission in self.permissions

    def require(self, permission: Permission) -> None:
        """Raise ``PermissionDenied`` unless this actor has ``permission``."""
        if permission not in self.permissions:
            raise PermissionDenied(self, permission)
