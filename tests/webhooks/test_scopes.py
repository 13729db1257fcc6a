"""Every guarded route needs one declared permission: each scope is let in or refused (403)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from flask import Flask

from crm_core.people import users
from crm_core.people.permissions import Actor, Scope
from webhooks.auth import ROUTE_PERMISSIONS, check_route_permissions, guarded_endpoints

OPERATOR = Actor.operator("tests")


def _calls(app: Flask) -> list[tuple[str, str, str]]:
    """(endpoint, method, url) for every guarded route, ids set to 1."""
    calls = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint not in guarded_endpoints(app):
            continue
        values = {arg: 1 for arg in rule.arguments}
        if "action" in rule.arguments:
            values["action"] = "cancel" if rule.endpoint == "campaigns.act" else "complete"
        method = sorted((rule.methods or set()) - {"HEAD", "OPTIONS"})[0]
        with app.test_request_context():
            from flask import url_for

            calls.append((rule.endpoint, method, url_for(rule.endpoint, **values)))
    return calls


def test_every_guarded_route_is_in_the_table_and_the_table_has_no_stale_entry(app: Flask) -> None:
    guarded = guarded_endpoints(app)
    assert set(guarded) == set(ROUTE_PERMISSIONS)
    assert guarded["campaigns.create"] == "send"
    assert guarded["api.reply_to_case"] == "send"
    assert guarded["api.show_contact"] == "read"


def test_an_undeclared_guarded_route_stops_the_app_from_starting(app: Flask) -> None:
    from webhooks.auth import require_api_key

    @require_api_key
    def sneaky() -> str:
        return "everything"

    app.add_url_rule("/api/sneaky", "sneaky", sneaky)
    with pytest.raises(RuntimeError, match="sneaky"):
        check_route_permissions(app)


@pytest.mark.parametrize("scope", list(Scope))
def test_each_scope_reaches_its_routes_and_is_refused_the_others(
    app: Flask, make_key: Callable[..., str], scope: Scope
) -> None:
    key = make_key(f"only-{scope.value}", scope.value)
    client = app.test_client()
    needed = guarded_endpoints(app)
    for endpoint, method, url in _calls(app):
        response = client.open(url, method=method, headers={"Authorization": f"Bearer {key}"})
        if needed[endpoint] == scope.value:
            assert response.status_code not in (401, 403), (endpoint, response.get_json())
            continue
        assert response.status_code == 403, (endpoint, response.status_code)
        assert response.mimetype == "application/problem+json"
        problem = response.get_json()
        assert problem["scope"] == needed[endpoint]
        assert f"lacks the '{needed[endpoint]}' scope" in problem["detail"]


def test_no_key_is_401_before_any_scope_is_looked_at(app: Flask) -> None:
    client = app.test_client()
    for i, (_endpoint, method, url) in enumerate(_calls(app)):
        # From one address each: more routes than one client's budget of failed keys.
        response = client.open(
            url,
            method=method,
            headers={"Authorization": "Bearer crm_nope"},
            environ_base={"REMOTE_ADDR": f"10.0.{i // 250}.{i % 250 + 1}"},
        )
        assert response.status_code == 401


def test_a_users_key_is_refused_what_the_role_does_not_allow(
    app: Flask, make_key: Callable[..., str]
) -> None:
    with app.extensions["crm"].sessions.begin() as session:
        users.add_user(
            session, actor=OPERATOR, email="agent@example.com", role="agent", password="x" * 12
        )
    key = make_key("agents", *[s.value for s in Scope], user="agent@example.com")
    client = app.test_client()
    auth = {"Authorization": f"Bearer {key}"}
    campaign = client.post("/api/campaigns", json={"name": "x"}, headers=auth)
    assert campaign.status_code == 403
    assert campaign.get_json()["scope"] == "send"
    assert "role 'agent'" in campaign.get_json()["detail"]
    # Replies are the agent's to send: the guard lets it through to the (missing) case.
    reply = client.post("/api/cases/1/reply", json={"body": "hi"}, headers=auth)
    assert reply.status_code == 404
    with app.extensions["crm"].sessions.begin() as session:
        users.disable_user(session, actor=OPERATOR, email="agent@example.com")
    assert client.get("/api/contacts", headers=auth).status_code == 401
