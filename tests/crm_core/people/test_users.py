"""Users: adding, roles, disabling, passwords, and signing in (argon2, rehash, throttle)."""

from __future__ import annotations

import uuid

import pytest
from argon2 import PasswordHasher
from sqlalchemy import select
from sqlalchemy.orm import Session

from crm_core.errors import InvalidInput
from crm_core.people import users
from crm_core.people.login_throttle import LoginThrottle
from crm_core.people.models import AuditEntry
from crm_core.people.passwords import needs_rehash
from crm_core.people.permissions import Actor, PermissionDenied
from tests.factories import USER_PASSWORD, UserFactory

OPERATOR = Actor.operator("tests")
PASSWORD = "a long enough secret"


@pytest.fixture
def throttle() -> LoginThrottle:
    return LoginThrottle.from_url(
        "memory://",
        prefix=f"t-{uuid.uuid4().hex}",
        per_account=3,
        per_address=5,
        window_seconds=600,
    )


def _audit(session: Session, entity_id: int) -> list[AuditEntry]:
    query = select(AuditEntry).where(AuditEntry.entity == "user", AuditEntry.entity_id == entity_id)
    return list(session.scalars(query.order_by(AuditEntry.id)))


def test_a_user_is_added_with_an_argon2_hash_and_an_audit_entry(session: Session) -> None:
    user = users.add_user(
        session, actor=OPERATOR, email=" Ann@Example.COM ", role="agent", password=PASSWORD
    )
    assert user.email == "ann@example.com"
    assert user.password_hash.startswith("$argon2id$")
    assert PASSWORD not in user.password_hash
    [entry] = _audit(session, user.id)
    assert (entry.actor, entry.action) == ("operator:tests", "create")
    assert entry.changes["role"] == {"before": None, "after": "agent"}
    with pytest.raises(users.UserExists):
        users.add_user(
            session, actor=OPERATOR, email="ann@example.com", role="viewer", password=PASSWORD
        )


@pytest.mark.parametrize(
    ("email", "role", "password", "field"),
    [
        ("not-an-address", "agent", PASSWORD, "email"),
        ("b@example.com", "boss", PASSWORD, "role"),
        ("b@example.com", "agent", "short", "password"),
    ],
)
def test_bad_input_names_the_field(
    session: Session, email: str, role: str, password: str, field: str
) -> None:
    with pytest.raises(InvalidInput) as refused:
        users.add_user(session, actor=OPERATOR, email=email, role=role, password=password)
    assert [e.field for e in refused.value.errors] == [field]


def test_only_an_admin_manages_users(session: Session) -> None:
    agent = Actor.for_user(user_id=1, email="a@example.com", role="agent")
    admin = Actor.for_user(user_id=2, email="b@example.com", role="admin")
    with pytest.raises(PermissionDenied):
        users.add_user(session, actor=agent, email="c@example.com", role="admin", password=PASSWORD)
    users.add_user(session, actor=admin, email="c@example.com", role="viewer", password=PASSWORD)
    with pytest.raises(PermissionDenied):
        users.set_role(session, actor=agent, email="c@example.com", role="admin")


def test_role_changes_and_disabling_are_audited(session: Session, throttle: LoginThrottle) -> None:
    user = UserFactory(email="d@example.com", role="viewer")
    users.set_role(session, actor=OPERATOR, email="D@example.com", role="admin")
    users.disable_user(session, actor=OPERATOR, email="d@example.com")
    users.disable_user(session, actor=OPERATOR, email="d@example.com")  # no second entry
    changes = [e.changes for e in _audit(session, user.id)]
    assert changes[0] == {"role": {"before": "viewer", "after": "admin"}}
    assert list(changes[1]) == ["disabled_at"]
    assert len(changes) == 2
    with pytest.raises(users.LoginRefused):
        users.authenticate(
            session, email="d@example.com", password=USER_PASSWORD, throttle=throttle
        )
    with pytest.raises(users.UserNotFound):
        users.disable_user(session, actor=OPERATOR, email="nobody@example.com")


def test_sign_in_gives_the_users_actor(session: Session, throttle: LoginThrottle) -> None:
    user = UserFactory(email="e@example.com", role="agent")
    actor = users.authenticate(
        session, email="E@example.com", password=USER_PASSWORD, throttle=throttle
    )
    assert (actor.kind, actor.id, actor.role) == ("user", user.id, "agent")
    assert user.last_login_at is not None
    for wrong in ("nope", ""):
        with pytest.raises(users.LoginRefused):
            users.authenticate(session, email="e@example.com", password=wrong, throttle=throttle)
    with pytest.raises(users.LoginRefused):
        users.authenticate(session, email="ghost@example.com", password="x", throttle=throttle)


def test_reset_password_replaces_the_hash_and_keeps_it_out_of_the_audit(
    session: Session, throttle: LoginThrottle
) -> None:
    user = UserFactory(email="f@example.com")
    users.reset_password(session, actor=OPERATOR, email="f@example.com", password=PASSWORD)
    assert users.authenticate(session, email="f@example.com", password=PASSWORD, throttle=throttle)
    with pytest.raises(users.LoginRefused):
        users.authenticate(
            session, email="f@example.com", password=USER_PASSWORD, throttle=throttle
        )
    [entry] = _audit(session, user.id)
    assert entry.changes == {"password": {"before": "<redacted>", "after": "<redacted>"}}


def test_a_hash_with_old_parameters_is_replaced_at_sign_in(
    session: Session, throttle: LoginThrottle
) -> None:
    weak = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1).hash(PASSWORD)
    user = UserFactory(email="g@example.com", password_hash=weak)
    assert needs_rehash(weak)
    users.authenticate(session, email="g@example.com", password=PASSWORD, throttle=throttle)
    assert user.password_hash != weak
    assert not needs_rehash(user.password_hash)
    PasswordHasher().verify(user.password_hash, PASSWORD)
    # A current hash is left alone.
    current = user.password_hash
    users.authenticate(session, email="g@example.com", password=PASSWORD, throttle=throttle)
    assert user.password_hash == current


def test_failed_sign_ins_lock_the_account_even_for_the_right_password(
    session: Session, throttle: LoginThrottle
) -> None:
    UserFactory(email="h@example.com")
    for _ in range(3):  # per_account=3
        with pytest.raises(users.LoginRefused):
            users.authenticate(session, email="h@example.com", password="wrong", throttle=throttle)
    with pytest.raises(users.LoginThrottled) as throttled:
        users.authenticate(
            session, email="h@example.com", password=USER_PASSWORD, throttle=throttle
        )
    assert 1 <= throttled.value.retry_after <= 600


def test_a_success_clears_the_accounts_failures(session: Session, throttle: LoginThrottle) -> None:
    UserFactory(email="i@example.com")
    for _ in range(2):
        with pytest.raises(users.LoginRefused):
            users.authenticate(session, email="i@example.com", password="wrong", throttle=throttle)
    users.authenticate(session, email="i@example.com", password=USER_PASSWORD, throttle=throttle)
    for _ in range(2):  # two more failures are allowed again
        with pytest.raises(users.LoginRefused):
            users.authenticate(session, email="i@example.com", password="wrong", throttle=throttle)
