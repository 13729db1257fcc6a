"""The console through Flask's test client: users to sign in as, a signed-in client."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable

import pytest
from flask import Flask
from flask.testing import FlaskClient

from crm_core.people import users
from tests.webhooks.conftest import OPERATOR

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
