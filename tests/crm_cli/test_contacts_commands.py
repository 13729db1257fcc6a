"""crm contacts import and export against the test database; errors are one line."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import Engine, func, select

from crm_cli import contacts as contacts_module
from crm_cli import session as cli_session
from crm_cli.main import cli
from crm_core.config import Settings
from crm_core.db import make_session_factory
from crm_core.models import AuditEntry, Contact

PEOPLE = """\
email,first_name,last_name,company
ada@engines.example,Ada,Lovelace,Engines Ltd
charles@engines.example,Charles,Babbage,Engines Ltd
not-an-email,Bad,Row,
"""


@pytest.fixture
def settings(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Settings:
    settings = Settings(database_url=database_url, broker_url="memory://")
    monkeypatch.setattr(cli_session, "get_settings", lambda: settings)
    monkeypatch.setattr(contacts_module, "get_settings", lambda: settings)
    return settings


def crm(*args: str, ok: bool = True) -> str:
    result = CliRunner().invoke(cli, list(args))
    assert (result.exit_code == 0) is ok, result.output
    return result.stdout


def contacts(engine: Engine) -> int:
    with make_session_factory(engine)() as session:
        return session.scalar(select(func.count()).select_from(Contact))


@pytest.fixture
def people_csv(tmp_path: Path) -> Path:
    path = tmp_path / "people.csv"
    path.write_text(PEOPLE, encoding="utf-8")
    return path


def test_a_dry_run_reports_each_line_and_writes_nothing(
    settings: Settings, committed_db: Engine, people_csv: Path
) -> None:
    out = crm("contacts", "import", str(people_csv), "--dry-run").splitlines()
    assert len(out) == 4
    assert out[0] == "line 2: create: new contact ada@engines.example, new customer 'Engines Ltd'"
    assert out[1] == (
        "line 3: create: new contact charles@engines.example,"
        " the new customer 'Engines Ltd' of line 2"
    )
    assert out[2] == "line 4: refuse: email: An email address must have an @-sign."
    assert out[3] == "dry run, nothing written: 3 rows: 2 would be created, 0 matched, 1 refused"
    assert contacts(committed_db) == 0


def test_an_import_commits_and_a_second_creates_nothing(
    settings: Settings, committed_db: Engine, people_csv: Path
) -> None:
    out = crm("contacts", "import", str(people_csv)).splitlines()
    assert out == [
        "line 4: refuse: email: An email address must have an @-sign.",
        "3 rows: 2 were created, 0 matched, 1 refused",
    ]
    assert contacts(committed_db) == 2
    again = crm("contacts", "import", str(people_csv)).splitlines()
    assert again[-1] == "3 rows: 0 were created, 2 matched, 1 refused"
    assert contacts(committed_db) == 2
    with make_session_factory(committed_db)() as session:
        actors = set(session.scalars(select(AuditEntry.actor)))
    assert len(actors) == 1
    assert actors.pop().startswith("operator:")


def test_export_then_import_creates_nothing(
    settings: Settings, committed_db: Engine, people_csv: Path, tmp_path: Path
) -> None:
    crm("contacts", "import", str(people_csv))
    exported = tmp_path / "out.csv"
    assert crm("contacts", "export", "--output", str(exported)) == ""
    assert exported.read_text().startswith("id,customer_id,email,phone,")
    out = crm("contacts", "import", str(exported)).splitlines()
    assert out == ["2 rows: 0 were created, 2 matched, 0 refused"]
    assert contacts(committed_db) == 2
    ndjson = crm("contacts", "export", "--format", "ndjson")
    assert len(ndjson.splitlines()) == 2


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"emial,name\nx@y.example,X\n", "unknown columns: emial, name; known: email"),
        (b"", "the file is empty"),
        (b"email\n\xff\xfe\x00garbage\n", "not UTF-8 text"),
        (b'email\n"a@b.example"x\n', "line 2: not CSV"),
    ],
)
def test_a_bad_file_is_one_line_and_writes_nothing(
    settings: Settings, committed_db: Engine, tmp_path: Path, content: bytes, message: str
) -> None:
    path = tmp_path / "bad.csv"
    path.write_bytes(content)
    result = CliRunner().invoke(cli, ["contacts", "import", str(path)])
    assert result.exit_code == 1
    assert result.stderr.startswith(f"Error: {path}: ")
    assert message in result.stderr
    assert result.stderr.count("\n") == 1
    assert "Traceback" not in result.output
    assert contacts(committed_db) == 0


def test_a_missing_file_is_one_line(
    settings: Settings, committed_db: Engine, tmp_path: Path
) -> None:
    result = CliRunner().invoke(cli, ["contacts", "import", str(tmp_path / "nope.csv")])
    assert result.exit_code == 1
    assert result.stderr == f"Error: {tmp_path / 'nope.csv'}: No such file or directory\n"


def test_an_unknown_export_format_is_refused(settings: Settings, committed_db: Engine) -> None:
    result = CliRunner().invoke(cli, ["contacts", "export", "--format", "xlsx"])
    assert result.exit_code == 2
    assert "'xlsx' is not one of 'csv', 'ndjson'" in result.stderr
