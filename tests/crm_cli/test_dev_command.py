"""`crm dev`'s public URL (the address it serves, unless CRM_PUBLIC_URL says otherwise),
and the line it prints at start."""

from __future__ import annotations

import pytest

from crm_cli.dev import listening_url, started_line
from crm_core.config import Settings


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
