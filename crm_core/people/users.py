"""Users: add, list, change the role, disable, reset the password, and sign in.

Every change is done by an ``Actor`` holding the ``users`` permission and leaves an
audit entry; passwords appear in the audit log only as "changed".
"""

from __future__ import annotations

import datetime as dt

from email_validator import EmailNotValidError, validate_email
from sqlalchemy import select
from sqlalchemy.orm import Session

from crm_core.db import utcnow
from crm_core.errors import FieldError, InvalidInput
from crm_core.people import audit
from crm_core.people.login_throttle import LoginThrottle
from crm_core.people.models import User
from crm_core.people.passwords import (
    check_password,
    dummy_hash,
    hash_password,
    needs_rehash,
    verify_password,
)
from crm_core.people.permissions import Actor, Permission, Role


class UserNotFound(LookupError):
    """No user has this e-mail address."""


class UserExists(ValueError):
    """A user with this e-mail address already exists."""


class LoginRefused(Exception):
    """Wrong address or password, or a disabled account; deliberately not saying which."""


class LoginThrottled(Exception):
    """Too many failed sign-ins for the account or the address; try again later."""

    def __init__(self, retry_after: int) -> None:
        self.retry_after = retry_after
        super().__init__(f"too many failed sign-ins; try again in {retry_after}s")


def user_email(raw: str) -> str:
    """The account's address: validated and lower-cased; a bad one is a field error."""
    try:
        return validate_email(raw.strip(), check_deliverability=False).normalized.lower()
    except EmailNotValidError as exc:
        raise InvalidInput([FieldError(("email",), str(exc))]) from None


def _role(raw: str) -> Role:
    try:
        return Role(raw)
    except ValueError:
        roles = ", ".join(r.value for r in Role)
        raise InvalidInput([FieldError(("role",), f"must be one of {roles}")]) from None


def find_user(session: Session, *, email: str) -> User | None:
    """The user with this address (any case), or None."""
    return session.scalar(select(User).where(User.email == email.strip().lower()))


def get_user(session: Session, *, email: str) -> User:
    """The user with this address; ``UserNotFound`` otherwise."""
    user = find_user(session, email=email)
    if user is None:
        raise UserNotFound(f"no user {email.strip().lower()!r}")
    return user


def add_user(session: Session, *, actor: Actor, email: str, role: str, password: str) -> User:
    """Create a user with a role and an argon2-hashed password."""
    actor.require(Permission.USERS)
    address, chosen = user_email(email), _role(role)
    check_password(password)
    if find_user(session, email=address) is not None:
        raise UserExists(f"user {address!r} already exists")
    user = User(email=address, role=chosen, password_hash=hash_password(password))
    session.add(user)
    session.flush()
    changes = {
        "email": {"before": None, "after": address},
        "role": {"before": None, "after": chosen},
    }
    audit.record(
        session, actor=actor, entity="user", entity_id=user.id, action="create", changes=changes
    )
    return user


def list_users(session: Session, *, actor: Actor) -> list[User]:
    """Every user, disabled ones included, by address."""
    actor.require(Permission.USERS)
    return list(session.scalars(select(User).order_by(User.email)))


def set_role(session: Session, *, actor: Actor, email: str, role: str) -> User:
    """Give a user another role; their keys follow it at once."""
    actor.require(Permission.USERS)
    chosen = _role(role)
    user = get_user(session, email=email)
    if user.role != chosen:
        changes = audit.changes_between({"role": user.role}, {"role": chosen.value})
        user.role = chosen
        audit.record(
            session, actor=actor, entity="user", entity_id=user.id, action="update", changes=changes
        )
    session.flush()
    return user


def disable_user(
    session: Session, *, actor: Actor, email: str, now: dt.datetime | None = None
) -> User:
    """Stop a user (and every key of theirs) from working; the user stays for the record."""
    actor.require(Permission.USERS)
    user = get_user(session, email=email)
    if user.disabled_at is None:
        user.disabled_at = now or utcnow()
        changes = audit.changes_between({"disabled_at": None}, {"disabled_at": user.disabled_at})
        audit.record(
            session, actor=actor, entity="user", entity_id=user.id, action="update", changes=changes
        )
    session.flush()
    return user


def reset_password(session: Session, *, actor: Actor, email: str, password: str) -> User:
    """Set a new password for a user."""
    actor.require(Permission.USERS)
    check_password(password)
    user = get_user(session, email=email)
    user.password_hash = hash_password(password)
    changes = {"password": {"before": audit.REDACTED, "after": audit.REDACTED}}
    audit.record(
        session, actor=actor, entity="user", entity_id=user.id, action="update", changes=changes
    )
    session.flush()
    return user


def authenticate(
    session: Session,
    *,
    email: str,
    password: str,
    throttle: LoginThrottle,
    client_address: str | None = None,
    now: dt.datetime | None = None,
) -> Actor:
    """Sign a user in: the actor they act as, or ``LoginRefused`` / ``LoginThrottled``.

    Failures count against the account and the client address; once either is over its
    budget the attempt is refused before the password is even checked. A hash made with
    older parameters is replaced by one made with today's.
    """
    address = email.strip().lower()
    wait = throttle.retry_after(email=address, address=client_address)
    if wait is not None:
        raise LoginThrottled(wait)
    user = find_user(session, email=address)
    matched = verify_password(user.password_hash if user else dummy_hash(), password)
    if user is None or not matched or user.disabled_at is not None:
        throttle.failed(email=address, address=client_address)
        raise LoginRefused("wrong e-mail address or password")
    if needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    user.last_login_at = now or utcnow()
    session.flush()
    throttle.succeeded(email=address)
    return Actor.for_user(user_id=user.id, email=user.email, role=user.role)
