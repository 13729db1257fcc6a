"""What every console answer carries: its security headers, escaped output, HTML error pages
(a reference id for a server error, never a traceback), and the vendored assets."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from crm_core.config import Settings
from webhooks.app import create_app
from webhooks.console.access import check_console_routes, console_permissions
from webhooks.console.site import HTMX_VERSION

STATIC = Path(__file__).parents[3] / "webhooks" / "console" / "static"


def _assert_strict_policy(answer: object) -> None:
    headers = answer.headers  # type: ignore[attr-defined]
    policy = headers["Content-Security-Policy"]
    assert "default-src 'self'" in policy
    assert "script-src 'self';" in policy
    assert "style-src 'self';" in policy
    assert "frame-ancestors 'none'" in policy
    assert "unsafe" not in policy
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["X-Frame-Options"] == "DENY"


def _assert_no_inline_code(html: str) -> None:
    assert re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html) is None, "inline script"
    assert "<style" not in html, "inline style element"
    assert re.search(r"\sstyle=", html) is None, "inline style attribute"
    assert re.search(r"\son[a-z]+=", html) is None, "inline event handler"


def test_pages_carry_a_strict_policy_and_no_inline_code(
    signed_in: Callable[[str], tuple[FlaskClient, str]],
) -> None:
    client, _ = signed_in("admin")
    for path in ("/console/", "/console/signin", "/console/no-such-page"):
        answer = client.get(path, follow_redirects=True)
        _assert_strict_policy(answer)
        assert answer.headers["Cache-Control"] == "no-store"
        _assert_no_inline_code(answer.get_data(as_text=True))


def test_an_unknown_console_address_is_an_html_404(app: Flask) -> None:
    answer = app.test_client().get("/console/no/such/page")
    assert answer.status_code == 404
    assert answer.mimetype == "text/html"
    assert "There is no page at this address." in answer.get_data(as_text=True)
    _assert_strict_policy(answer)


def test_a_server_error_shows_a_reference_and_no_traceback(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # A database without tables: the sign-in's query fails inside the view.
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'empty.sqlite3'}",
        broker_url="memory://",
        ratelimit_url="memory://",
        secret_key="console error test",
    )
    client = create_app(settings).test_client()
    page = client.get("/console/signin").get_data(as_text=True)
    token = re.search(r'name="csrf-token" content="([^"]+)"', page).group(1)  # type: ignore[union-attr]
    answer = client.post(
        "/console/signin",
        data={"email": "a@example.com", "password": "whatever-at-all", "csrf_token": token},
    )
    assert answer.status_code == 500
    html = answer.get_data(as_text=True)
    reference = re.search(r'<code class="reference">([0-9a-f]{12})</code>', html)
    assert reference, html
    assert "Traceback" not in html
    assert "no such table" not in html
    logged = [r.getMessage() for r in caplog.records if reference.group(1) in r.getMessage()]
    assert logged
    assert "raised sqlalchemy.exc.OperationalError" in logged[0]
    _assert_strict_policy(answer)


def test_output_is_escaped(app: Flask) -> None:
    client = app.test_client()
    token = re.search(  # type: ignore[union-attr]
        r'name="csrf-token" content="([^"]+)"', client.get("/console/signin").get_data(as_text=True)
    ).group(1)
    answer = client.post(
        "/console/signin",
        data={"email": '"><script>alert(1)</script>', "password": "x" * 12, "csrf_token": token},
    )
    html = answer.get_data(as_text=True)
    assert "<script>alert(1)</script>" not in html
    assert "&#34;&gt;&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_htmx_is_vendored_pinned_and_served(app: Flask) -> None:
    vendored = STATIC / "htmx" / "htmx.min.js"
    assert "Zero-Clause BSD" in (STATIC / "htmx" / "LICENSE").read_text()
    version = (STATIC / "htmx" / "VERSION").read_text()
    assert f"htmx.org {HTMX_VERSION}" in version
    assert hashlib.sha256(vendored.read_bytes()).hexdigest() in version
    assert f'version:"{HTMX_VERSION}"' in vendored.read_text()
    served = app.test_client().get("/console/assets/htmx/htmx.min.js")
    assert served.status_code == 200
    assert served.data == vendored.read_bytes()
    page = app.test_client().get("/console/signin").get_data(as_text=True)
    sources = re.findall(r'(?:src|href)="([^"]+\.(?:js|css))"', page)
    assert sources
    assert all(s.startswith("/console/assets/") for s in sources), sources


def test_every_console_view_declares_its_permission(app: Flask) -> None:
    check_console_routes(app)  # the app would not have started otherwise
    table = console_permissions(app)
    assert table["console.overview.index"] == "read"
    assert "console.signin.show" not in table  # public: the sign-in page itself
    assert not any(endpoint.endswith(".static") for endpoint in table)


def test_an_undeclared_console_view_stops_the_app(app: Flask) -> None:
    app.view_functions["console.overview.undeclared"] = lambda: "no permission"
    with pytest.raises(RuntimeError, match=r"console\.overview\.undeclared"):
        check_console_routes(app)


def test_without_a_secret_key_the_console_says_so_and_the_rest_runs(tmp_path: Path) -> None:
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'empty.sqlite3'}",
        broker_url="memory://",
        ratelimit_url="memory://",
    )
    client = create_app(settings).test_client()
    answer = client.get("/console/signin")
    assert answer.status_code == 503
    assert "CRM_SECRET_KEY" in answer.get_data(as_text=True)
    assert client.get("/healthz").status_code == 200


def test_only_the_console_reads_or_sets_the_cookie(
    signed_in: Callable[[str], tuple[FlaskClient, str]],
) -> None:
    client, _ = signed_in("viewer")
    for path in ("/healthz", "/openapi.json", "/"):
        assert "Set-Cookie" not in client.get(path).headers, path
