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
from crm_core.mailboxes import services as mailboxes
from crm_core.notifications import services as notifications
from crm_core.notifications.models import DeliveryAttempt, NotificationDelivery
from crm_core.people.models import ApiKey, User
from tests.imap_server import imap_server_fixture, support_request
from tests.services import free_port
from tests.webhooks.conftest import Sender

__all__ = ["imap_server_fixture"]

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
            "/console/settings/mailboxes/any/test": {},
        }  # fmt: skip
        for path, data in writes.items():
            assert client.post(path, data={**data, "csrf_token": token}).status_code == 403, path
    with app.extensions["crm"].sessions() as session:
        assert session.scalars(select(ApiKey)).first() is None


def test_a_mailbox_connection_is_tested(app: Flask, signed_in: SignedIn, imap_server) -> None:  # type: ignore[no-untyped-def]
    imap_server.append(support_request(n) for n in (1, 2))
    with app.extensions["crm"].sessions.begin() as session:
        mailboxes.add_mailbox(session, name="support", url=imap_server.url())
        mailboxes.add_mailbox(session, name="gone", url=f"imap://u:p@127.0.0.1:{free_port()}/INBOX")
    client, token = signed_in("admin")
    html = client.get("/console/settings").get_data(as_text=True)
    assert 'id="mailbox-support"' in html
    assert imap_server.users["support"] not in html  # the password is never shown
    good = client.post("/console/settings/mailboxes/support/test", data={"csrf_token": token})
    assert good.status_code == 200
    assert 'id="mailbox-test">support: connected; 2 messages in INBOX' in good.get_data(
        as_text=True
    )
    bad = client.post("/console/settings/mailboxes/gone/test", data={"csrf_token": token})
    assert bad.status_code == 200
    assert 'role="alert" id="mailbox-test">gone: ' in bad.get_data(as_text=True)
    missing = client.post("/console/settings/mailboxes/nope/test", data={"csrf_token": token})
    assert missing.status_code == 404


def test_a_subscription_shows_its_delivery_log(app: Flask, signed_in: SignedIn) -> None:
    with app.extensions["crm"].sessions.begin() as session:
        sub = notifications.add_subscription(
            session, url="https://hooks.example.com/crm", events=["case.opened"]
        )
        delivery = NotificationDelivery(
            subscription_id=sub.id, event_type="case.opened", payload={}, status="failed",
            last_error="HTTP 500",
        )  # fmt: skip
        session.add(delivery)
        session.flush()
        for code in (500, 502):
            session.add(DeliveryAttempt(delivery_id=delivery.id, duration_ms=12,
                                        status_code=code, error=f"HTTP {code}"))  # fmt: skip
    client, _ = signed_in("admin")
    listed = client.get("/console/settings").get_data(as_text=True)
    assert (
        f'href="/console/settings/subscriptions/{sub.id}">https://hooks.example.com/crm' in listed
    )
    page = client.get(f"/console/settings/subscriptions/{sub.id}").get_data(as_text=True)
    row = page.split(f'id="delivery-{delivery.id}"')[1].split("</tr>")[0]
    assert "failed" in row
    assert "500 in 12 ms" in row
    assert "502 in 12 ms" in row
    assert client.get("/console/settings/subscriptions/999999").status_code == 404
