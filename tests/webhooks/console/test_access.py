"""Signing in and out of the console, the session cookie, its timeouts, and the front door."""

from __future__ import annotations

import time
from collections.abc import Callable

from flask import Flask
from flask.testing import FlaskClient

from crm_core.people import users
from tests.webhooks.conftest import OPERATOR
from tests.webhooks.console.conftest import PASSWORD, csrf_of, sign_in
from webhooks.console.sessions import COOKIE_NAME


def _cookie_header(answer: object) -> str:
    headers = answer.headers.getlist("Set-Cookie")  # type: ignore[attr-defined]
    found = [h for h in headers if h.startswith(COOKIE_NAME + "=")]
    assert found, headers
    return found[-1]


def test_the_front_door_leads_to_the_console_through_the_sign_in_page(app: Flask) -> None:
    client = app.test_client()
    front = client.get("/")
    assert front.status_code == 302
    assert front.headers["Location"] == "/console/"
    console = client.get("/console/")
    assert console.status_code == 303
    assert console.headers["Location"] == "/console/signin?next=/console/"
    page = client.get(console.headers["Location"])
    assert page.status_code == 200
    assert 'name="next" value="/console/"' in page.get_data(as_text=True)


def test_signing_in_sets_a_strict_cookie_and_opens_the_console(
    app: Flask, make_user: Callable[[str], str]
) -> None:
    client = app.test_client()
    email = make_user("agent")
    token = csrf_of(client)
    answer = client.post(
        "/console/signin",
        data={"email": email.upper(), "password": PASSWORD, "csrf_token": token,
              "next": "/console/?x=1"},
    )  # fmt: skip
    assert answer.status_code == 303
    assert answer.headers["Location"] == "/console/?x=1"
    cookie = _cookie_header(answer)
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie
    assert "Secure" not in cookie  # plain http here
    assert "Expires=" in cookie
    page = client.get("/console/")
    assert page.status_code == 200
    assert f'{email} <span class="role">(agent)</span>' in page.get_data(as_text=True)
    # A new session got a new CSRF token: one planted before sign-in is worth nothing.
    assert csrf_of(client, "/console/") != token


def test_the_cookie_is_secure_under_https(app: Flask, make_user: Callable[[str], str]) -> None:
    client = app.test_client()
    email = make_user("viewer")
    token = csrf_of(client, base_url="https://crm.example")
    answer = client.post(
        "/console/signin",
        data={"email": email, "password": PASSWORD, "csrf_token": token},
        base_url="https://crm.example",
    )
    assert answer.status_code == 303
    assert "Secure" in _cookie_header(answer)


def test_a_wrong_password_re_renders_the_form_and_too_many_are_throttled(
    app: Flask, make_user: Callable[[str], str]
) -> None:
    client = app.test_client()
    email = make_user("viewer")
    token = csrf_of(client)
    limit = app.extensions["crm"].settings.login_failures_per_account
    for _ in range(limit):
        answer = client.post(
            "/console/signin", data={"email": email, "password": "wrong" * 3, "csrf_token": token}
        )
        assert answer.status_code == 401
        html = answer.get_data(as_text=True)
        assert "Wrong e-mail address or password." in html
        assert f'value="{email}"' in html
    throttled = client.post(
        "/console/signin", data={"email": email, "password": PASSWORD, "csrf_token": token}
    )
    assert throttled.status_code == 429
    assert "Too many failed sign-ins" in throttled.get_data(as_text=True)


def test_an_unknown_address_answers_like_a_wrong_password(app: Flask) -> None:
    client = app.test_client()
    token = csrf_of(client)
    answer = client.post(
        "/console/signin",
        data={"email": "ghost@example.com", "password": PASSWORD, "csrf_token": token},
    )
    assert answer.status_code == 401
    assert "Wrong e-mail address or password." in answer.get_data(as_text=True)


def test_empty_fields_are_named(app: Flask) -> None:
    client = app.test_client()
    answer = client.post("/console/signin", data={"email": "", "csrf_token": csrf_of(client)})
    assert answer.status_code == 400
    assert "Enter your e-mail address and password." in answer.get_data(as_text=True)


def test_sign_in_goes_only_to_console_pages_of_this_site(
    app: Flask, make_user: Callable[[str], str]
) -> None:
    email = make_user("viewer")
    for target in ("https://evil.example/console/", "//evil.example/console", "/api/customers",
                   "/\\evil.example"):  # fmt: skip
        client = app.test_client()
        answer = client.post(
            "/console/signin",
            data={"email": email, "password": PASSWORD, "csrf_token": csrf_of(client),
                  "next": target},
        )  # fmt: skip
        assert answer.headers["Location"] == "/console/", target


def test_signing_out_ends_the_session(
    signed_in: Callable[[str], tuple[FlaskClient, str]],
) -> None:
    client, token = signed_in("agent")
    answer = client.post("/console/signout", data={"csrf_token": token})
    assert answer.status_code == 303
    assert client.get("/console/").status_code == 303


def test_writes_without_the_csrf_token_are_refused(
    app: Flask, signed_in: Callable[[str], tuple[FlaskClient, str]], make_user: Callable[[str], str]
) -> None:
    client, token = signed_in("admin")
    refused = client.post("/console/signout", data={"csrf_token": "forged"})
    assert refused.status_code == 403
    assert "text/html" in refused.content_type
    assert client.post("/console/signout").status_code == 403
    assert client.get("/console/").status_code == 200  # still signed in
    # The header htmx sends is as good as the form field.
    assert client.post("/console/signout", headers={"X-CSRF-Token": token}).status_code == 303
    # Sign-in itself needs the token: no logging a victim into someone else's account.
    fresh = app.test_client()
    login = fresh.post("/console/signin", data={"email": make_user("viewer"), "password": PASSWORD})
    assert login.status_code == 403


def _session_cookie(app: Flask, client: FlaskClient, **fields: object) -> None:
    """Rewrite the client's session cookie with ``fields``, signed as the app signs it."""
    with app.test_request_context():
        serializer = app.session_interface.get_signing_serializer(app)  # type: ignore[attr-defined]
        cookie = client.get_cookie(COOKIE_NAME)
        assert cookie is not None
        assert serializer is not None
        data = serializer.loads(cookie.value)
        data.update(fields)
        client.set_cookie(COOKIE_NAME, serializer.dumps(data))


def test_a_session_times_out_when_idle_and_after_its_lifetime(
    app: Flask, signed_in: Callable[[str], tuple[FlaskClient, str]]
) -> None:
    settings = app.extensions["crm"].settings
    now = int(time.time())
    client, _ = signed_in("viewer")
    _session_cookie(app, client, seen=now - settings.console_idle_minutes * 60 + 30)
    assert client.get("/console/").status_code == 200  # idle, but not long enough
    _session_cookie(app, client, seen=now - settings.console_idle_minutes * 60 - 1)
    answer = client.get("/console/")
    assert answer.status_code == 303
    assert answer.headers["Location"].startswith("/console/signin")
    assert client.get("/console/").status_code == 303  # ended, not just refused once

    client, _ = signed_in("viewer")
    _session_cookie(app, client, iat=now - int(settings.console_session_hours * 3600) - 1)
    assert client.get("/console/").status_code == 303


def test_live_refresh_does_not_keep_a_session_alive(
    app: Flask, signed_in: Callable[[str], tuple[FlaskClient, str]]
) -> None:
    settings = app.extensions["crm"].settings
    client, _ = signed_in("viewer")
    idle_start = int(time.time()) - settings.console_idle_minutes * 60 + 2
    _session_cookie(app, client, seen=idle_start)
    assert client.get("/console/", headers={"X-Console-Poll": "1"}).status_code == 200
    time.sleep(3)
    assert client.get("/console/").status_code == 303


def test_a_disabled_user_is_signed_out_at_once(app: Flask, make_user: Callable[[str], str]) -> None:
    client, email = app.test_client(), make_user("agent")
    sign_in(client, email)
    with app.extensions["crm"].sessions.begin() as session:
        users.disable_user(session, actor=OPERATOR, email=email)
    assert client.get("/console/").status_code == 303


def test_a_new_role_applies_to_the_next_page(app: Flask, make_user: Callable[[str], str]) -> None:
    client, email = app.test_client(), make_user("agent")
    sign_in(client, email)
    with app.extensions["crm"].sessions.begin() as session:
        users.set_role(session, actor=OPERATOR, email=email, role="viewer")
    assert "(viewer)" in client.get("/console/").get_data(as_text=True)
