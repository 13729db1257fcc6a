"""`crm dev`'s public URL (the address it serves, unless CRM_PUBLIC_URL says otherwise), the
line it prints at start, and the mail URL it and the workers check before starting."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from crm_cli.dev import listening_url, started_line
from crm_cli.main import cli
from crm_core.config import Settings, get_settings
from tests.processes import service_env


@pytest.mark.parametrize(
    ("host", "port", "url"),
    [
        ("127.0.0.1", 5000, "http://127.0.0.1:5000"),
        ("0.0.0.0", 8000, "http://127.0.0.1:8000"),  # every address: loopback reaches it
        ("::", 8000, "http://127.0.0.1:8000"),
        ("::1", 5077, "http://[::1]:5077"),
        ("crm.internal", 80, "http://crm.internal:80"),
    ],
)
def test_listening_url(host: str, port: int, url: str) -> None:
    assert listening_url(host, port) == url


def test_the_start_line_masks_every_password() -> None:
    settings = Settings(
        database_url="postgresql+psycopg://crm:s3cret%21@db.internal:5432/crm",
        broker_url="redis://:hunter2@redis.internal:6379/0",
        public_url="https://crm.example",
    )
    line = started_line(settings, "0.0.0.0", 8000)
    assert "s3cret" not in line
    assert "hunter2" not in line
    assert "database postgresql+psycopg://crm:***@db.internal:5432/crm" in line
    assert "broker redis://:***@redis.internal:6379/0" in line


def test_a_mistyped_mail_url_stops_crm_dev_before_it_starts_anything(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CRM_VAR_DIR", str(tmp_path))
    monkeypatch.setenv("CRM_MAIL_URL", "smtp//mail.example.com:25")
    monkeypatch.setenv("CRM_PUBLIC_URL", "http://127.0.0.1:1")  # crm dev would set it for good
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(cli, ["dev", "--no-migrate", "--port", "1"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        "Error: CRM_MAIL_URL is not usable: unknown mail URL scheme '(none)':"
        " use smtp, smtps, mailgun+https, sendgrid+https, postmark+https, http(s), console or file"
    ]
    assert not (tmp_path / "celerybeat-schedule").exists()


def test_a_mistyped_mail_url_stops_a_worker_at_start_with_one_line(tmp_path: Path) -> None:
    env = service_env(CRM_VAR_DIR=str(tmp_path), CRM_MAIL_URL="smtp://mail.example.com:2x5")
    worker = subprocess.run(
        [sys.executable, "-m", "celery", "--app", "workers.app", "worker", "--queues",
         "campaigns", "--pool", "threads", "--concurrency", "1"],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert worker.returncode == 1
    assert worker.stderr.strip().splitlines()[-1] == (
        "crm worker: CRM_MAIL_URL is not usable: the mail URL's port is not a number"
    )
