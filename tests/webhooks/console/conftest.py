"""The console through Flask's test client: users to sign in as, a signed-in client."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import Engine, select, update
from sqlalchemy import event as sa_event

from crm_core.customers.models import Contact
from crm_core.ingestion import single_event
from crm_core.ingestion.models import InboxEvent
from crm_core.ingestion.policy import IngestPolicy
from crm_core.people import users
from tests.webhooks.conftest import OPERATOR, Sender

PASSWORD = "correct horse battery staple"
_TOKEN = re.compile(r'name="csrf-token" content="([^"]+)"')


def csrf_of(client: FlaskClient, path: str = "/console/signin", **options: str) -> str:
    """The CSRF token a page of the console hands out to this client's session."""
    page = client.get(path, **options)
    match = _TOKEN.search(page.get_data(as_text=True))
    assert match, f"no CSRF token on {path}"
    return match.group(1)


@pytest.fixture
def make_user(app: Flask) -> Callable[[str], str]:
    """Create a user with ``role`` and the password ``PASSWORD``; returns the address."""

    def make(role: str) -> str:
        email = f"{role}-{uuid.uuid4().hex[:8]}@example.com"
        with app.extensions["crm"].sessions.begin() as session:
            users.add_user(session, actor=OPERATOR, email=email, role=role, password=PASSWORD)
        return email

    return make


def sign_in(client: FlaskClient, email: str, password: str = PASSWORD) -> str:
    """Sign in through the form; the session's new CSRF token."""
    token = csrf_of(client)
    answer = client.post(
        "/console/signin", data={"email": email, "password": password, "csrf_token": token}
    )
    assert answer.status_code == 303, answer.get_data(as_text=True)
    return csrf_of(client, "/console/")


@pytest.fixture
def signed_in(
    app: Flask, make_user: Callable[[str], str]
) -> Callable[[str], tuple[FlaskClient, str]]:
    """A test client signed in as a new user with ``role``, and its CSRF token."""

    def make(role: str) -> tuple[FlaskClient, str]:
        client = app.test_client()
        return client, sign_in(client, make_user(role))

    return make


def stored_lead(app: Flask, sender: Sender, *, process: bool = True, **fields: Any) -> int:
    """Post a signed lead; processed into its customer and contact unless ``process`` is off.
    The event's id."""
    body = json.dumps(fields).encode()
    answer = sender.post("leads", body)
    assert answer.status_code == 202, answer.get_data(as_text=True)
    event_id = int(answer.json["event_id"])  # type: ignore[index]
    if process:
        settings = app.extensions["crm"].settings
        with app.extensions["crm"].sessions.begin() as session:
            single_event.run_event(
                session, event_id=event_id, policy=IngestPolicy.from_settings(settings)
            )
    return event_id


def set_status(app: Flask, event_id: int, status: str, error: str | None = None) -> None:
    """Put an event in ``status`` (as a worker that gave up on it would have)."""
    with app.extensions["crm"].sessions.begin() as session:
        session.execute(
            update(InboxEvent)
            .where(InboxEvent.id == event_id)
            .values(status=status, error=error, attempts=1)
        )


def customer_of(app: Flask, email: str) -> tuple[int, int]:
    """The (customer id, contact id) of the contact with this address."""
    with app.extensions["crm"].sessions() as session:
        contact = session.scalars(
            select(Contact).where(Contact.email_normalized == email.lower())
        ).one()
        return contact.customer_id, contact.id


class QueryCounter:
    """Counts the statements an engine runs while it is on."""

    def __init__(self, engine: Engine) -> None:
        self.engine, self.count = engine, 0

    def _count(self, *_: Any) -> None:
        self.count += 1

    def __enter__(self) -> QueryCounter:
        self.count = 0
        sa_event.listen(self.engine, "before_cursor_execute", self._count)
        return self

    def __exit__(self, *_: Any) -> None:
        sa_event.remove(self.engine, "before_cursor_execute", self._count)


def queries_for(app: Flask, client: FlaskClient, path: str) -> int:
    """How many statements the app runs to answer ``path`` (which must answer 200)."""
    with QueryCounter(app.extensions["crm"].engine) as counter:
        answer = client.get(path)
    assert answer.status_code == 200, answer.get_data(as_text=True)[-2000:]
    return counter.count
