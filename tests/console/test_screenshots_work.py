"""The Cases, Pipeline, Campaigns and Settings pages at 1280 and 390 pixels wide: each must
render and pass axe at both widths without a sideways scrollbar; ``make screenshots`` keeps
the pictures in docs/console/ (``CRM_SCREENSHOT_DIR``; a test run writes them to a temporary
folder)."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select

from crm_core.bounces.suppression import suppress
from crm_core.campaigns import services as campaigns
from crm_core.customers.models import Contact, Customer
from crm_core.editing import opportunities
from crm_core.support.models import SupportCase
from tests.console.conftest import (
    OPERATOR,
    Console,
    User,
    check_accessibility,
    screenshot_whole_page,
)
from tests.console.test_work_pages import _mail_in
from tests.processes import wait_until

WIDTHS = {1280: 800, 390: 844}
# The elements that reach past the right edge of the window, to name in a failure.
WIDE = """() => Array.from(document.querySelectorAll('body *'))
  .filter(e => e.getBoundingClientRect().right > window.innerWidth + 1)
  .slice(0, 5).map(e => e.tagName + '.' + e.className + '#' + e.id)"""


def _seed(console: Console) -> dict[str, int | str]:
    """A case opened by mail, deals at three stages, a campaign, a suppressed address."""
    tag = uuid.uuid4().hex[:4]
    subject = f"The invoice PDF is empty ({tag})"
    _mail_in(console, f"grace-{tag}@navy.example", subject)

    def case_id() -> int | None:
        with console.sessions() as session:
            return session.scalar(select(SupportCase.id).where(SupportCase.subject == subject))

    found = wait_until(case_id, timeout=60, what="the case")
    with console.sessions.begin() as session:
        customer = Customer(name="Analytical Engines Ltd", name_key=f"ae {tag}", kind="company")
        session.add(customer)
        session.flush()
        session.add(Contact(customer_id=customer.id, first_name="Ada", full_name="Ada Lovelace",
                            email=f"ada-{tag}@engines.example",
                            email_normalized=f"ada-{tag}@engines.example"))  # fmt: skip
        for name, amount, stage in (
            ("Difference engine service", "12000", "new"),
            ("Punched card supply", "800", "qualified"),
            ("Analytical engine", "250000", "proposal"),
            ("Manual translation", "1500", "won"),
        ):
            opportunities.create_opportunity(
                session,
                actor=OPERATOR,
                document={"customer_id": customer.id, "name": name, "amount": amount,
                          "currency": "GBP", "stage": stage},
            )  # fmt: skip
        campaign = campaigns.create_campaign(
            session,
            name="Autumn newsletter",
            code=f"autumn-{tag}",
            subject="News for {{ contact.first_name }}",
            text="Hello {{ contact.first_name }}. Leave: {{ unsubscribe_url }}",
            html="<h1>Autumn</h1><p>Hello {{ contact.first_name }}</p>",
            segment={"all": [{"field": "country", "op": "eq", "value": "GB"}]},
        )
        suppress(session, email_normalized=f"bounced-{tag}@example.com", reason="bounced")
        return {"case": found, "campaign": campaign.id, "contact": f"ada-{tag}@engines.example"}


def _pages(seeded: dict[str, int | str]) -> dict[str, str]:
    return {
        "cases": "/console/cases?show=open",
        "case": f"/console/cases/{seeded['case']}",
        "pipeline": "/console/pipeline",
        "campaigns": "/console/campaigns",
        "campaign-compose": "/console/campaigns/new",
        "campaign": f"/console/campaigns/{seeded['campaign']}",
        "campaign-preview": f"/console/campaigns/{seeded['campaign']}/preview"
        f"?contact={seeded['contact']}",
        "settings": "/console/settings",
        "source-setup": "/console/settings/sources/website",
    }


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    chosen = os.environ.get("CRM_SCREENSHOT_DIR")
    path = Path(chosen) if chosen else tmp_path
    path.mkdir(parents=True, exist_ok=True)
    return path


def test_every_work_page_at_both_widths(
    page: Page, console: Console, folder: Path, sign_in: object
) -> None:
    seeded = _seed(console)
    user: User = console.make_user("admin")
    sign_in(page, user)  # type: ignore[operator]
    for name, path in _pages(seeded).items():
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
