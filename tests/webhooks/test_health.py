"""Liveness and readiness, and the problem documents errors become."""

from __future__ import annotations

from pathlib import Path

import pytest
from flask import request
from sqlalchemy import Engine

from crm_core.config import Settings
from crm_core.db import make_session_factory
from crm_core.people.api_keys import create_api_key
from crm_core.people.permissions import Actor
from tests.services import free_port
from webhooks.app import create_app


def client_for(**settings: object):
    app = create_app(Settings(**settings))
    return app.test_client()


def test_healthz_answers_while_the_process_lives(database_url: str) -> None:
    response = client_for(database_url=database_url).get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}


def test_readyz_is_ready_when_database_and_broker_answer(database_url: str) -> None:
    response = client_for(database_url=database_url, broker_url="memory://").get("/readyz")
    assert response.status_code == 200
    assert response.get_json()["checks"] == {"database": "ok", "broker": "ok"}


def test_readyz_is_503_when_the_broker_is_down(database_url: str) -> None:
    dead_broker = f"redis://127.0.0.1:{free_port()}/0"
    response = client_for(database_url=database_url, broker_url=dead_broker).get("/readyz")
    assert response.status_code == 503
    assert response.mimetype == "application/problem+json"
    body = response.get_json()
    assert body["status"] == 503
    assert body["checks"] == {"database": "ok", "broker": "unavailable"}
    assert body["detail"] == "Not ready: broker unavailable."


def test_readyz_is_503_when_the_database_is_unreachable(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-dir" / "crm.sqlite3"
    response = client_for(database_url=f"sqlite:///{missing}", broker_url="memory://").get(
        "/readyz"
    )
    assert response.status_code == 503
    assert response.get_json()["checks"] == {"database": "unavailable", "broker": "ok"}


def test_readyz_tells_strangers_nothing_about_hosts_users_or_errors(
    caplog: pytest.LogCaptureFixture,
) -> None:
    port = free_port()
    response = client_for(
        database_url="postgresql+psycopg://leaky_user:hunter2@127.0.0.1:5432/test",
        broker_url=f"redis://:hunter3@127.0.0.1:{port}/0",
    ).get("/readyz")
    assert response.status_code == 503
    body = response.get_json()
    assert body["checks"] == {"database": "unavailable", "broker": "unavailable"}
    text = response.get_data(as_text=True)
    for secret in ("leaky_user", "hunter", "127.0.0.1", "5432", str(port), "Error"):
        assert secret not in text
    # The operator still learns why, from the log.
    assert "database unreachable" in caplog.text
    assert "broker unreachable" in caplog.text


def test_readyz_shows_the_reasons_to_an_admin_key_only(committed_db: Engine) -> None:
    operator = Actor.operator("test")
    with make_session_factory(committed_db).begin() as session:
        _, key = create_api_key(session, actor=operator, name="monitoring", scopes=["admin"])
        _, reader = create_api_key(session, actor=operator, name="dashboard", scopes=["read"])
    port = free_port()
    client = client_for(
        database_url=committed_db.url.render_as_string(hide_password=False),
        broker_url=f"redis://127.0.0.1:{port}/0",
    )
    for headers in (
        {},
        {"Authorization": "Bearer crm_not-a-key"},
        {"Authorization": f"Bearer {reader}"},
    ):
        assert "reasons" not in client.get("/readyz", headers=headers).get_json()
    body = client.get("/readyz", headers={"Authorization": f"Bearer {key}"}).get_json()
    assert body["checks"] == {"database": "ok", "broker": "unavailable"}
    assert list(body["reasons"]) == ["broker"]
    assert body["reasons"]["broker"].startswith("broker unreachable")


def test_unknown_routes_and_methods_are_problem_documents(database_url: str) -> None:
    client = client_for(database_url=database_url)
    missing = client.get("/no/such/thing")
    assert (missing.status_code, missing.mimetype) == (404, "application/problem+json")
    assert missing.get_json()["title"] == "Not Found"
    wrong_method = client.delete("/healthz")
    assert wrong_method.status_code == 405
    assert wrong_method.mimetype == "application/problem+json"
    assert "GET" in wrong_method.headers["Allow"]


def test_an_unexpected_error_is_a_500_problem_without_internals(
    database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    app = create_app(Settings(database_url=database_url))

    @app.post("/boom")
    def boom() -> str:
        raise RuntimeError(f"cannot handle {request.get_data(as_text=True)}")

    response = app.test_client().post("/boom", data="ann.private@customer.example")
    assert response.status_code == 500
    assert response.mimetype == "application/problem+json"
    assert "ann.private" not in response.get_data(as_text=True)
    # The log says where, by type; the message would quote the request's body.
    assert "unhandled error in POST /boom" in caplog.text
    assert "builtins.RuntimeError" in caplog.text
    assert "ann.private" not in caplog.text
