"""`crm dev`'s public URL: the address it serves, unless CRM_PUBLIC_URL says otherwise."""

from __future__ import annotations

import pytest

from crm_cli.dev import listening_url


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
