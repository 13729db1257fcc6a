"""Liveness and readiness, and the problem documents errors become."""

from __future__ import annotations

from pathlib import Path

from crm_core.config import Settings
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
    assert any("broker unreachable" in check for check in body["checks"])


def test_readyz_is_503_when_the_database_is_unreachable(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-dir" / "crm.sqlite3"
    response = client_for(database_url=f"sqlite:///{missing}", broker_url="memory://").get(
        "/readyz"
    )
    assert response.status_code == 503
    assert any("database unreachable" in check for check in response.get_json()["checks"])


def test_unknown_routes_and_methods_are_problem_documents(database_url: str) -> None:
    client = client_for(database_url=database_url)
    missing = client.get("/no/such/thing")
    assert (missing.status_code, missing.mimetype) == (404, "application/problem+json")
    assert missing.get_json()["title"] == "Not Found"
    wrong_method = client.delete("/healthz")
    assert wrong_method.status_code == 405
    assert wrong_method.mimetype == "application/problem+json"
    assert "GET" in wrong_method.headers["Allow"]


def test_an_unexpected_error_is_a_500_problem_without_internals(database_url: str) -> None:
    app = create_app(Settings(database_url=database_url))

    @app.get("/boom")
    def boom() -> str:
        raise RuntimeError("secret internals")

    response = app.test_client().get("/boom")
    assert response.status_code == 500
    assert response.mimetype == "application/problem+json"
    assert "secret internals" not in response.get_data(as_text=True)
