"""crm mailboxes add/list/test/remove, against the test database and a real Dovecot."""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from sqlalchemy import Engine, text

from crm_cli import session as cli_session
from crm_cli.main import cli
from crm_core.config import Settings
from tests.imap_server import (
    DovecotServer,
    imap_server_fixture,  # noqa: F401 - the fixture imap_server
    support_request,
)


@pytest.fixture
def crm(database_url: str, committed_db: Engine, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """Run ``crm ARGS…`` on the test database; returns the click result."""
    settings = Settings(database_url=database_url, broker_url="memory://")
    monkeypatch.setattr(cli_session, "get_settings", lambda: settings)
    runner = CliRunner()

    def run(*args: str, ok: bool = True, **invoke):  # type: ignore[no-untyped-def]
        result = runner.invoke(cli, list(args), **invoke)
        assert (result.exit_code == 0) is ok, result.output
        if not ok:
            assert result.exit_code == 1
            assert "Traceback" not in result.output
        return result

    return run


def test_add_test_list_remove(crm, imap_server: DovecotServer) -> None:  # type: ignore[no-untyped-def]
    password = imap_server.users["support"]
    imap_server.append(support_request(n) for n in (1, 2, 3))
    added = crm("mailboxes", "add", "support", "--url", imap_server.url(), "--move-to", "Archive")
    assert "source mailbox-support" in added.output
    assert password not in added.output

    assert crm("mailboxes", "test", "support").output.strip() == (
        "mailbox 'support': 3 messages in INBOX"
    )
    listing = crm("mailboxes", "list").output
    assert listing.startswith(f"support\timap://support@127.0.0.1:{imap_server.port}/INBOX\t")
    assert "moves to Archive" in listing
    assert password not in listing

    assert (
        "already exists"
        in crm("mailboxes", "add", "support", "--url", imap_server.url(), ok=False).output
    )
    crm("mailboxes", "remove", "support")
    assert crm("mailboxes", "list").output.strip() == "no mailboxes"
    assert "no mailbox 'support'" in crm("mailboxes", "remove", "support", ok=False).output


def test_a_failing_test_is_one_line_without_the_password(  # type: ignore[no-untyped-def]
    crm, imap_server: DovecotServer
) -> None:
    wrong = imap_server.url().replace(":s3cret@", ":wrong-pass-word@")
    crm("mailboxes", "add", "support", "--url", wrong)
    failed = crm("mailboxes", "test", "support", ok=False).output
    assert failed.startswith("Error: ")
    assert "login failed" in failed
    assert len(failed.strip().splitlines()) == 1
    assert "wrong-pass-word" not in failed

    crm("mailboxes", "add", "gone", "--url", imap_server.url())
    imap_server.stop()
    assert "cannot connect" in crm("mailboxes", "test", "gone", ok=False).output
    assert "no mailbox 'nope'" in crm("mailboxes", "test", "nope", ok=False).output


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://u:p@host/", "imap:// or imaps://"),
        ("imap://host/", "a user and a password"),
        ("imaps://u:p@host/?starttls=1", "starttls"),
        ("imap://u:p@host:99999/", "port"),
    ],
)
def test_a_bad_url_is_one_line(crm, url: str, message: str) -> None:  # type: ignore[no-untyped-def]
    output = crm("mailboxes", "add", "support", "--url", url, ok=False).output
    assert message in output
    assert len(output.strip().splitlines()) == 1
    assert "no mailboxes" in crm("mailboxes", "list").output


@pytest.mark.parametrize("way", ["stdin", "environment", "prompt"])
def test_the_password_need_not_be_on_the_command_line(  # type: ignore[no-untyped-def]
    crm, imap_server: DovecotServer, committed_db: Engine, way: str
) -> None:
    password = imap_server.users["support"]
    url = imap_server.url().replace(f":{password}@", "@")
    assert password not in url
    args = ["mailboxes", "add", "support", "--url", url]
    if way == "stdin":
        added = crm(*args, "--password-stdin", input=password + "\n")
    elif way == "environment":
        added = crm(*args, env={"CRM_MAILBOX_PASSWORD": password})
    else:
        added = crm(*args, input=password + "\n")
        assert "Password: " in added.output
    assert password not in added.output
    assert "warning" not in added.output
    with committed_db.connect() as conn:
        stored = conn.execute(text("SELECT password FROM mailboxes")).scalar_one()
    assert password not in stored
    imap_server.append([support_request(1)])
    assert crm("mailboxes", "test", "support").output.strip() == (
        "mailbox 'support': 1 messages in INBOX"
    )


def test_a_password_in_the_url_is_warned_about_and_not_taken_twice(  # type: ignore[no-untyped-def]
    crm, imap_server: DovecotServer
) -> None:
    twice = crm(
        "mailboxes", "add", "support", "--url", imap_server.url(), "--password-stdin",
        input="other\n", ok=False,
    )  # fmt: skip
    assert "password: is given both in the URL and apart" in twice.output
    added = crm("mailboxes", "add", "support", "--url", imap_server.url())
    assert "visible in ps and the shell history" in added.output
    url = imap_server.url().replace(f":{imap_server.users['support']}@", "@")
    empty = crm("mailboxes", "add", "other", "--url", url, "--password-stdin", input="", ok=False)
    assert "standard input held no password" in empty.output


def test_a_bad_url_is_reported_before_the_prompt(crm) -> None:  # type: ignore[no-untyped-def]
    output = crm("mailboxes", "add", "support", "--url", "imap://u@host:99999/", ok=False).output
    assert "Password" not in output
    assert "port" in output
