"""Failed sign-ins are counted in the real Redis, shared by every process that signs in."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy.orm import Session

from crm_core.people import users
from crm_core.people.login_throttle import LoginThrottle
from tests.factories import USER_PASSWORD, UserFactory
from tests.services import REDIS_URL, redis_reason, unavailable


@pytest.fixture
def throttles() -> tuple[LoginThrottle, LoginThrottle]:
    """Two throttles on one Redis, as two web processes would have."""
    reason = redis_reason()
    if reason:
        unavailable("Redis", reason)
    prefix = f"login-test-{uuid.uuid4().hex}"

    def make() -> LoginThrottle:
        return LoginThrottle.from_url(
            REDIS_URL, prefix=prefix, per_account=3, per_address=4, window_seconds=300
        )

    return make(), make()


def test_the_account_budget_is_shared_across_processes(
    session: Session, throttles: tuple[LoginThrottle, LoginThrottle]
) -> None:
    UserFactory(email="ann@example.com")
    first, second = throttles
    for throttle in (first, second, first):
        with pytest.raises(users.LoginRefused):
            users.authenticate(
                session, email="ann@example.com", password="guess", throttle=throttle
            )
    with pytest.raises(users.LoginThrottled) as refused:
        users.authenticate(
            session, email="ann@example.com", password=USER_PASSWORD, throttle=second
        )
    assert 1 <= refused.value.retry_after <= 300


def test_one_address_guessing_many_accounts_is_stopped(
    session: Session, throttles: tuple[LoginThrottle, LoginThrottle]
) -> None:
    UserFactory(email="bob@example.com")
    first, second = throttles
    for n in range(4):  # per_address=4, each against another account
        with pytest.raises(users.LoginRefused):
            users.authenticate(
                session,
                email=f"guess{n}@example.com",
                password="guess",
                throttle=first if n % 2 else second,
                client_address="203.0.113.9",
            )
    with pytest.raises(users.LoginThrottled):
        users.authenticate(
            session,
            email="bob@example.com",
            password=USER_PASSWORD,
            throttle=first,
            client_address="203.0.113.9",
        )
    # The account itself is fine from another address.
    actor = users.authenticate(
        session,
        email="bob@example.com",
        password=USER_PASSWORD,
        throttle=first,
        client_address="198.51.100.7",
    )
    assert actor.kind == "user"
