"""The Settings page (admins): sources with setup steps and secret rotation, API keys shown
once and revoked, users and roles, suppressions removed with a reason; refused to others."""

from __future__ import annotations

import re
from collections.abc import Callable

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from crm_core.bounces.models import Suppression
from crm_core.bounces.suppression import suppress
from crm_core.people.models import ApiKey, User
from tests.webhooks.conftest import Sender

SignedIn = Callable[[str], tuple[FlaskClient, str]]


def test_sources_show_setup_steps_and_rotate_their_secret(
    app: Flask, sender: Sender, signed_in: SignedIn
) -> None:
    client, token = signed_in("admin")
    html = client.get("/console/settings").get_data(as_text=True)
    assert f'id="source-{sender.name}"' in html
    steps = client.get(f"/console/settings/sources/{sender.name}")
    assert steps.status_code == 200
    assert f"/webhooks/{sender.name}" in steps.get_data(as_text=True)
    assert client.get("/console/settings/sources/nope").status_code == 404
    rotated = client.post(f"/console/settings/sources/{sender.name}/rotate",
                          data={"csrf_token": token})  # fmt: skip
    assert rotated.status_code == 200
    secret = re.search(r'id="new-secret">.*?<pre>([^<]+)</pre>', rotated.get_data(as_text=True),
                       re.S)  # fmt: skip
    assert secret
    assert secret.group(1) != sender.secret
    assert secret.group(1) not in client.get("/console/settings").get_data(as_text=True)


def test_an_api_key_is_shown_once_and_revoked(app: Flask, signed_in: SignedIn) -> None:
    client, token = signed_in("admin")
    form = {"name": "zapier", "scopes": ["read", "write"], "csrf_token": token}
    made = client.post("/console/settings/keys", data=form)
    assert made.status_code == 200
    key = re.search(r'id="new-key">.*?<pre>([^<]+)</pre>', made.get_data(as_text=True), re.S)
    assert key
    assert key.group(1) not in client.get("/console/settings").get_data(as_text=True)
    answer = client.get("/api/contacts", headers={"Authorization": f"Bearer {key.group(1)}"})
    assert answer.status_code == 200
    bad = client.post("/console/settings/keys", data={"name": "", "scopes": ["read"],
                                                       "csrf_token": token})  # fmt: skip
    assert bad.status_code == 422
    assert 'id="key-name-error"' in bad.get_data(as_text=True)
    revoked = client.post("/console/settings/keys/zapier/revoke", data={"csrf_token": token})
    assert revoked.status_code == 303
    with app.extensions["crm"].sessions() as session:
        row = session.scalars(select(ApiKey).where(ApiKey.name == "zapier")).one()
        assert row.revoked_at is not None
    answer = client.get("/api/contacts", headers={"Authorization": f"Bearer {key.group(1)}"})
    assert answer.status_code == 401


def test_users_are_added_and_given_roles(
    app: Flask, signed_in: SignedIn, make_user: Callable[[str], str]
) -> None:
    client, token = signed_in("admin")
    added = client.post("/console/settings/users", data={
        "email": "new.agent@example.com", "role": "agent",
        "password": "a long enough password", "csrf_token": token})  # fmt: skip
    assert added.status_code == 303
    short = client.post("/console/settings/users", data={
        "email": "short@example.com", "role": "agent", "password": "short",
        "csrf_token": token})  # fmt: skip
    assert short.status_code == 422
    html = short.get_data(as_text=True)
    assert 'id="user-password-error"' in html
    assert 'value="short@example.com"' in html
    assert 'value="short"' not in html  # a password is never sent back
    viewer = make_user("viewer")
    assert client.post(f"/console/settings/users/{viewer}/role",
                       data={"role": "agent", "csrf_token": token}).status_code == 303  # fmt: skip
    with app.extensions["crm"].sessions() as session:
        assert session.scalars(select(User.role).where(User.email == viewer)).one() == "agent"


def test_a_suppression_is_removed_only_with_a_reason(app: Flask, signed_in: SignedIn) -> None:
    with app.extensions["crm"].sessions.begin() as session:
        suppress(session, email_normalized="gone@example.com", reason="bounced")
    client, token = signed_in("admin")
    assert "gone@example.com" in client.get("/console/settings").get_data(as_text=True)
    removal = "/console/settings/suppressions/remove"
    blank = client.post(removal, data={"email": "gone@example.com", "reason": "",
                                       "csrf_token": token})  # fmt: skip
    assert blank.status_code == 422
    assert 'id="removal-reason-error"' in blank.get_data(as_text=True)
    unknown = client.post(removal, data={"email": "x@example.com", "reason": "r",
                                         "csrf_token": token})  # fmt: skip
    assert unknown.status_code == 422
    assert 'id="removal-email-error"' in unknown.get_data(as_text=True)
    done = client.post(removal, data={"email": "gone@example.com", "reason": "fixed the mailbox",
                             "csrf_token": token})  # fmt: skip
    assert done.status_code == 303
    with app.extensions["crm"].sessions() as session:
        assert session.scalars(select(Suppression)).first() is None


def test_settings_are_refused_to_everyone_but_admins(
    app: Flask, sender: Sender, signed_in: SignedIn
) -> None:
    for role in ("viewer", "agent"):
        client, token = signed_in(role)
        assert "/console/settings" not in client.get("/console/").get_data(as_text=True)
        assert client.get("/console/settings").status_code == 403
        writes = {
            f"/console/settings/sources/{sender.name}/rotate": {},
            "/console/settings/keys": {"name": f"forged-{role}", "scopes": ["admin"]},
            "/console/settings/keys/any/revoke": {},
            "/console/settings/users": {"email": f"f-{role}@example.com", "role": "admin",
                                        "password": "a long enough password"},
            "/console/settings/suppressions/remove": {"email": "a@example.com", "reason": "r"},
        }  # fmt: skip
        for path, data in writes.items():
            assert client.post(path, data={**data, "csrf_token": token}).status_code == 403, path
    with app.extensions["crm"].sessions() as session:
        assert session.scalars(select(ApiKey)).first() is None
