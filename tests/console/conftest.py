"""The console in a real browser: Debian's Chromium driven by Playwright, against the real
platform (gunicorn serving the app on PostgreSQL, a Celery worker with beat on Redis).

Every test here is marked ``browser`` (``pytest -m browser`` selects them). Without
/usr/bin/chromium, PostgreSQL or Redis they are skipped with the reason; with ``CI=true``
they fail instead. One platform serves the whole run; tests keep apart by making their own
users, sources and leads with fresh names.

Fixtures for a page's test:

- ``console`` — the running platform: ``url(path)``, ``sessions`` (the same database),
  ``make_user(role)``, ``post_lead(...)``, ``mail`` (the SMTP sink it sends to);
- ``page`` (pytest-playwright's, on a fresh browser context, ``base_url`` pointing at the
  console) and ``sign_in(page, user)``;
- ``check_accessibility(page)`` — axe-core in the page; serious or critical violations fail.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from playwright.sync_api import Page, expect
from sqlalchemy.orm import Session, sessionmaker

from crm_core import migrate
from crm_core.db import make_engine, make_session_factory
from crm_core.ingestion import services
from crm_core.people import users
from crm_core.people.permissions import Actor
from tests.keyring import TEST_KEYRING
from tests.processes import celery_worker, service_env, web_app
from tests.services import (
    REDIS_URL,
    postgres_reason,
    redis_reason,
    scratch_postgres_database,
    unavailable,
)
from tests.signed import signed_headers
from tests.smtp_server import SmtpTestServer, running_smtp_server

CHROMIUM = os.environ.get("CRM_TEST_CHROMIUM", "/usr/bin/chromium")
AXE = Path(__file__).parent / "axe" / "axe.min.js"
PASSWORD = "correct horse battery staple"
OPERATOR = Actor.operator("browser-tests")
BLOCKING_IMPACTS = ("serious", "critical")
SUPPORT_ADDRESS = "support@crm.example"  # mail to it opens a case


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.browser)


@dataclass(frozen=True)
class User:
    email: str
    password: str
    role: str


@dataclass
class Console:
    """The running platform the browser talks to."""

    base: str
    sessions: sessionmaker[Session]
    env: dict[str, str]
    source: str
    secret: str
    # The SMTP sink the platform mails to (replies, campaigns).
    mail: SmtpTestServer | None = None

    def url(self, path: str) -> str:
        return self.base + path

    def make_user(self, role: str = "agent") -> User:
        """A user with ``role`` and a fresh address, password ``PASSWORD``."""
        email = f"{role}-{uuid.uuid4().hex[:8]}@example.com"
        with self.sessions.begin() as session:
            users.add_user(session, actor=OPERATOR, email=email, role=role, password=PASSWORD)
        return User(email, PASSWORD, role)

    def post_lead(self, **fields: Any) -> int:
        """Post a signed lead to the platform's webhook intake; its event id."""
        body = json.dumps(fields).encode()
        response = requests.post(
            self.url(f"/webhooks/{self.source}/leads"),
            data=body,
            headers=signed_headers(self.secret, body),
            timeout=10,
        )
        assert response.status_code == 202, response.text
        return int(response.json()["event_id"])


def _require_chromium() -> None:
    if shutil.which(CHROMIUM) is None:
        unavailable("Chromium", f"{CHROMIUM} is not installed (apt-get install chromium)")


def _require_services() -> None:
    _require_chromium()
    reason = postgres_reason()
    if reason:
        unavailable("PostgreSQL", reason)
    reason = redis_reason()
    if reason:
        unavailable("Redis", reason)


@pytest.fixture(scope="session")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    """gunicorn and a Celery worker (with beat) on a scratch PostgreSQL database and Redis."""
    _require_services()
    tmp = tmp_path_factory.mktemp("console")
    with scratch_postgres_database("crm_console") as url, running_smtp_server() as mail:
        migrate.upgrade(url)
        engine = make_engine(url, keyring=TEST_KEYRING)
        sessions = make_session_factory(engine)
        with sessions.begin() as session:
            _, secret = services.create_source(session, name="website")
        env = service_env(
            CRM_DATABASE_URL=url,
            CRM_BROKER_URL=REDIS_URL,
            CRM_BROKER_KEY_PREFIX=f"console-{uuid.uuid4().hex}:",
            CRM_RATELIMIT_URL="memory://",
            CRM_SECRET_KEY="console-test-secret",
            CRM_PUBLIC_URL="http://127.0.0.1",
            CRM_VAR_DIR=str(tmp),
            CRM_HEARTBEAT_SECONDS="1",
            CRM_SWEEP_INTERVAL_SECONDS="1",
            CRM_SWEEP_GRACE_SECONDS="2",
            CRM_MAIL_URL=mail.url(),
            CRM_SUPPORT_ADDRESSES=SUPPORT_ADDRESS,
        )
        queues = "ingest,maintenance,campaigns"
        with (
            celery_worker(env, queues=queues, concurrency=1, beat=True, log_path=tmp / "w.log"),
            web_app(env, threads=8) as base,
        ):
            yield Console(base, sessions, env, "website", secret, mail)
        engine.dispose()


@pytest.fixture(scope="session")
def browser_type_launch_args(
    browser_type_launch_args: dict[str, Any],
) -> dict[str, Any]:
    """Debian's Chromium, not a browser Playwright downloads (CI cannot reach its CDN)."""
    _require_chromium()
    return {**browser_type_launch_args, "executable_path": CHROMIUM}


@pytest.fixture(scope="session")
def base_url(console: Console) -> str:
    return console.base


@pytest.fixture(autouse=True)
def _timeouts(request: pytest.FixtureRequest) -> None:
    if "page" in request.fixturenames:
        page: Page = request.getfixturevalue("page")
        page.set_default_timeout(15_000)
        expect.set_options(timeout=15_000)


@pytest.fixture
def sign_in() -> Callable[[Page, User], None]:
    """Sign ``user`` in through the sign-in form; the overview is then shown."""

    def go(page: Page, user: User) -> None:
        page.goto("/console/signin")
        page.get_by_label("E-mail address").fill(user.email)
        page.get_by_label("Password").fill(user.password)
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_role("heading", level=1, name="Overview")).to_be_visible()

    return go


@functools.cache
def _axe_source() -> str:
    return AXE.read_text(encoding="utf-8") + "\n;undefined"


# The two widths every page is drawn and checked at (height: a common screen of that width).
WIDTHS = {1280: 800, 390: 844}
# The elements that reach past the right edge of the window, to name in a failure.
WIDE = """() => Array.from(document.querySelectorAll('body *'))
  .filter(e => e.getBoundingClientRect().right > window.innerWidth + 1)
  .slice(0, 5).map(e => e.tagName + '.' + e.className + '#' + e.id)"""


@pytest.fixture
def screenshot_folder(tmp_path: Path) -> Path:
    """``CRM_SCREENSHOT_DIR`` (``make screenshots``: docs/console), else a temporary folder."""
    chosen = os.environ.get("CRM_SCREENSHOT_DIR")
    path = Path(chosen) if chosen else tmp_path
    path.mkdir(parents=True, exist_ok=True)
    return path


def shoot_at_both_widths(page: Page, pages: dict[str, str], folder: Path) -> None:
    """Each page at each of ``WIDTHS``: it renders its heading (and any mail it shows), passes
    axe, scrolls no sideways, and is drawn into ``folder`` as NAME-WIDTH.png."""
    for name, path in pages.items():
        for width, height in WIDTHS.items():
            page.set_viewport_size({"width": width, "height": height})
            page.goto(path)
            expect(page.get_by_role("heading", level=1)).to_be_visible()
            if page.locator("iframe.mail").count():  # the sanitized mail, drawn before the shot
                expect(page.frame_locator("iframe.mail").first.locator("body")).not_to_be_empty()
            check_accessibility(page)
            overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
            wide = page.evaluate(WIDE) if overflow > 0 else []
            assert overflow <= 0, f"{name} scrolls sideways at {width}px: {wide}"
            screenshot_whole_page(page, folder / f"{name}-{width}.png")


def screenshot_whole_page(page: Page, path: Path) -> None:
    """The whole page in one picture, iframes drawn. Chromium runs a sandboxed iframe (the
    case's sanitized mail) in a process of its own, which a ``full_page`` capture leaves
    blank; so the viewport grows to the page's height for the shot, then shrinks back."""
    size = page.viewport_size
    assert size is not None
    height = page.evaluate("document.documentElement.scrollHeight")
    page.set_viewport_size({"width": size["width"], "height": max(height, size["height"])})
    try:
        page.wait_for_timeout(150)  # a frame of layout at the new size
        page.screenshot(path=path)
    finally:
        page.set_viewport_size(size)


def check_accessibility(page: Page) -> None:
    """Run axe-core on the page as it is; fail on any serious or critical violation.

    The console's policy refuses inline scripts, so ``page.add_script_tag`` is refused too:
    axe is evaluated through the DevTools protocol instead, which page policies do not govern.
    """
    if not page.evaluate("typeof axe !== 'undefined'"):
        page.evaluate(_axe_source())
    results = page.evaluate("async () => await axe.run(document)")
    blocking = [v for v in results["violations"] if v["impact"] in BLOCKING_IMPACTS]
    described = [
        f"{v['id']} ({v['impact']}): {v['help']} at "
        + ", ".join(str(node["target"]) for node in v["nodes"][:3])
        for v in blocking
    ]
    assert not blocking, f"{page.url}: " + "; ".join(described)


@pytest.fixture
def accessible() -> Callable[[Page], None]:
    return check_accessibility
