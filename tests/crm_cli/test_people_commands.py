"""crm users, crm api-keys and crm audit, against the test database."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from sqlalchemy import Engine

from crm_cli import session as cli_session
from crm_cli.main import cli
from crm_core.config import Settings
from crm_core.db import make_session_factory
from crm_core.people.api_keys import authenticate_api_key
from crm_core.people.permissions import Permission

PASSWORD = "a long enough secret"


@pytest.fixture
def crm(database_url: str, committed_db: Engine, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """Run ``crm ARGS…`` on the test database; returns the click result."""
    settings = Settings(database_url=database_url, broker_url="memory://")
    monkeypatch.setattr(cli_session, "get_settings", lambda: settings)
    runner = CliRunner()

    def run(*args: str, ok: bool = True, stdin: str | None = None):  # type: ignore[no-untyped-def]
        result = runner.invoke(cli, list(args), input=stdin)
        assert (result.exit_code == 0) is ok, result.output
        return result

    return run


def _actor(engine: Engine, key: str):  # type: ignore[no-untyped-def]
    with make_session_factory(engine).begin() as session:
        return authenticate_api_key(session, key=key)


def test_users_add_list_set_role_disable(crm) -> None:  # type: ignore[no-untyped-def]
    crm(
        "users",
        "add",
        "Ann@Example.com",
        "--role",
        "agent",
        "--password-stdin",
        stdin=PASSWORD + "\n",
    )
    # The prompt asks twice and the two must match.
    crm("users", "add", "bob@example.com", "--role", "viewer", stdin=f"{PASSWORD}\n{PASSWORD}\n")
    listing = crm("users", "list").output
    assert "ann@example.com\tagent\tactive\tnever signed in" in listing
    assert "bob@example.com\tviewer\tactive" in listing
    crm("users", "set-role", "bob@example.com", "admin")
    crm("users", "disable", "ann@example.com")
    listing = crm("users", "list").output
    assert "bob@example.com\tadmin" in listing
    assert "ann@example.com\tagent\tdisabled" in listing
    crm(
        "users", "reset-password", "bob@example.com", "--password-stdin", stdin="another long one\n"
    )


def test_users_errors_are_one_line_messages(crm) -> None:  # type: ignore[no-untyped-def]
    short = crm(
        "users",
        "add",
        "c@example.com",
        "--role",
        "agent",
        "--password-stdin",
        stdin="x\n",
        ok=False,
    )
    assert "password: must be 12 to 1024 characters" in short.output
    assert "Traceback" not in short.output
    bad = crm(
        "users", "add", "nope", "--role", "agent", "--password-stdin", stdin=PASSWORD, ok=False
    )
    assert "email:" in bad.output
    assert (
        "no user 'ghost@example.com'"
        in crm("users", "disable", "ghost@example.com", ok=False).output
    )
    assert "is not one of" in crm("users", "set-role", "c@example.com", "boss", ok=False).output
    crm("users", "add", "c@example.com", "--role", "agent", "--password-stdin", stdin=PASSWORD)
    dup = crm(
        "users",
        "add",
        "C@example.com",
        "--role",
        "agent",
        "--password-stdin",
        stdin=PASSWORD,
        ok=False,
    )
    assert "already exists" in dup.output


def test_api_keys_create_prints_the_key_last_and_lists_scopes(crm, committed_db: Engine) -> None:  # type: ignore[no-untyped-def]
    key = crm("api-keys", "create", "ops").output.splitlines()[-1]
    assert key.startswith("crm_")
    actor = _actor(committed_db, key)
    assert actor is not None
    assert actor.permissions == {Permission.READ}
    sender = crm("api-keys", "create", "mailer", "--scope", "read", "--scope", "send").output
    assert _actor(committed_db, sender.splitlines()[-1]).allows(Permission.CAMPAIGNS)
    listing = crm("api-keys", "list").output
    assert f"ops\t{key[:12]}…\tread\t-\tactive" in listing
    assert "mailer\t" in listing
    assert "read,send" in listing
    assert key not in listing
    crm("api-keys", "revoke", "ops")
    assert "ops\t" in crm("api-keys", "list").output
    assert "revoked" in crm("api-keys", "list").output
    assert _actor(committed_db, key) is None
    assert "no API key 'nope'" in crm("api-keys", "revoke", "nope", ok=False).output
    assert "already exists" in crm("api-keys", "create", "mailer", ok=False).output


def test_a_users_key_is_capped_by_the_role(crm, committed_db: Engine) -> None:  # type: ignore[no-untyped-def]
    crm("users", "add", "v@example.com", "--role", "viewer", "--password-stdin", stdin=PASSWORD)
    out = crm(
        "api-keys", "create", "v", "--scope", "write", "--scope", "read", "--user", "v@example.com"
    )
    actor = _actor(committed_db, out.output.splitlines()[-1])
    assert actor is not None
    assert actor.permissions == {Permission.READ}
    assert "v@example.com" in crm("api-keys", "list").output
    missing = crm("api-keys", "create", "w", "--user", "ghost@example.com", ok=False)
    assert "no user 'ghost@example.com'" in missing.output


def test_audit_lists_who_did_what(crm) -> None:  # type: ignore[no-untyped-def]
    crm("users", "add", "a@example.com", "--role", "agent", "--password-stdin", stdin=PASSWORD)
    crm("users", "set-role", "a@example.com", "admin")
    crm("api-keys", "create", "k")
    text = crm("audit", "--entity", "user").output.splitlines()
    assert len(text) == 2
    assert "update\tuser" in text[0]
    assert "role: 'agent' -> 'admin'" in text[0]
    assert text[0].split("\t")[1].startswith("operator:")
    lines = crm("audit", "--json").output.splitlines()
    assert [json.loads(line)["entity"] for line in lines] == ["api_key", "user", "user"]
    assert "no audit entries" in crm("audit", "--since", "2999-01-01").output
    assert "ISO 8601" in crm("audit", "--since", "yesterday", ok=False).output
