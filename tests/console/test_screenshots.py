"""Every console page at 1280 and 390 pixels wide: each must render and pass axe at both
widths without a sideways scrollbar, and ``make screenshots`` keeps the pictures in
docs/console/ (``CRM_SCREENSHOT_DIR``; a test run writes them to a temporary folder)."""

from __future__ import annotations

import uuid
from pathlib import Path

from playwright.sync_api import Page, expect
from sqlalchemy import select, update

from crm_core.customers.models import Contact
from crm_core.ingestion.models import InboxEvent
from tests.console.conftest import Console, User, check_accessibility, shoot_at_both_widths
from tests.processes import wait_until


def _status(console: Console, event_id: int) -> str:
    with console.sessions() as session:
        event = session.get(InboxEvent, event_id)
        return event.status if event else ""


def _seed(console: Console) -> dict[str, int]:
    """Two leads of one company (so a merge has a choice) and a failed event."""
    tag = uuid.uuid4().hex[:4]
    leads = [
        ("ada", "Ada Lovelace"),
        ("charles", "Charles Babbage"),
    ]
    ids = [
        console.post_lead(
            email=f"{who}-{tag}@engines.example",
            full_name=name,
            company="Analytical Engines Ltd",
            phone="+44 20 7946 0018",
        )
        for who, name in leads
    ]
    failed = console.post_lead(email=f"mary-{tag}@engines.example", full_name="Mary Somerville")
    for event_id in [*ids, failed]:
        wait_until(lambda e=event_id: _status(console, e) == "processed", timeout=60, what="leads")
    with console.sessions.begin() as session:
        session.execute(
            update(InboxEvent)
            .where(InboxEvent.id == failed)
            .values(status="failed", error="TransientError: connection to the CRM database lost")
        )
        ada = session.scalars(
            select(Contact).where(Contact.email_normalized == f"ada-{tag}@engines.example")
        ).one()
        return {"event": ids[0], "failed": failed, "customer": ada.customer_id, "contact": ada.id}


def _pages(seeded: dict[str, int]) -> dict[str, str]:
    return {
        "overview": "/console/",
        "events": "/console/events",
        "event": f"/console/events/{seeded['event']}",
        "event-failed": f"/console/events/{seeded['failed']}",
        "replay-confirm": "/console/events/replay?status=failed",
        "people": "/console/people",
        "people-search": "/console/people?q=engines",
        "customer": f"/console/people/customers/{seeded['customer']}",
        "contact-edit": f"/console/people/contacts/{seeded['contact']}/edit",
        "contact-merge": f"/console/people/contacts/{seeded['contact']}/merge",
        "not-found": "/console/no-such-page",
    }


def test_every_page_at_both_widths(
    page: Page, console: Console, screenshot_folder: Path, sign_in: object
) -> None:
    folder = screenshot_folder
    seeded = _seed(console)
    user: User = console.make_user("admin")
    page.set_viewport_size({"width": 1280, "height": 800})
    page.goto("/console/signin")
    check_accessibility(page)
    page.screenshot(path=folder / "signin-1280.png")
    sign_in(page, user)  # type: ignore[operator]
    # The worker's heartbeat, so the overview shows it alive.
    expect(page.locator("#live")).to_contain_text("pid", timeout=30_000)
    shoot_at_both_widths(page, _pages(seeded), folder)
    assert len(list(folder.glob("*.png"))) >= 2 * len(_pages(seeded)) + 1
