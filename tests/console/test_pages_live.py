"""The console against the real platform: a lead posted to the webhook intake shows up on the
overview and in People while they are open, an agent replays a failed event and watches the
worker take it, and a viewer can neither see nor forge a write. Each page passes axe."""

from __future__ import annotations

import uuid
from collections.abc import Callable

from playwright.sync_api import Page, expect
from sqlalchemy import select, update

from crm_core.customers.models import Contact
from crm_core.ingestion.models import InboxEvent
from tests.console.conftest import Console, User
from tests.processes import wait_until

SignIn = Callable[[Page, User], None]
Accessible = Callable[[Page], None]


def _status(console: Console, event_id: int) -> str:
    with console.sessions() as session:
        event = session.get(InboxEvent, event_id)
        return event.status if event else ""


def _processed_lead(console: Console, company: str) -> tuple[int, str]:
    email = f"{uuid.uuid4().hex[:8]}@{company.split()[0].lower()}.example"
    event_id = console.post_lead(email=email, full_name="Grace Hopper", company=company)
    wait_until(lambda: _status(console, event_id) == "processed", timeout=60, what="the lead")
    return event_id, email


def test_a_webhook_lead_appears_in_the_overview_and_in_people_without_a_reload(
    page: Page, console: Console, sign_in: SignIn, accessible: Accessible
) -> None:
    sign_in(page, console.make_user("viewer"))
    people = page.context.new_page()
    people.goto("/console/people")
    expect(people.get_by_role("heading", name="Customers changed last")).to_be_visible()
    # The word searched for below starts with a letter: six hex digits can all be digits, which
    # search reads as the end of a phone number.
    company = f"Compilers c{uuid.uuid4().hex[:6]} Ltd"
    event_id = console.post_lead(
        email=f"grace-{uuid.uuid4().hex[:6]}@navy.example", full_name="Grace Hopper",
        company=company,
    )  # fmt: skip
    latest = page.locator("#latest-events")
    expect(latest.get_by_role("link", name=f"#{event_id} website/leads")).to_be_visible()
    row = latest.locator("li", has=page.get_by_role("link", name=f"#{event_id} website/leads"))
    expect(row.locator(".badge")).to_have_text("processed", timeout=30_000)
    expect(people.get_by_role("link", name=company)).to_be_visible(timeout=30_000)
    accessible(page)
    accessible(people)
    # The lead's customer, found by searching as one types.
    word = company.split()[1]
    people.get_by_label("Search contacts, customers and cases").press_sequentially(word, delay=30)
    expect(people.get_by_role("heading", name=f"Results for “{word}”")).to_be_visible()
    people.get_by_role("link", name=company).first.click()
    expect(people.get_by_role("heading", level=1)).to_contain_text(company)
    expect(people.get_by_text("primary", exact=True)).to_be_visible()
    accessible(people)


def test_an_agent_replays_a_failed_event(
    page: Page, console: Console, sign_in: SignIn, accessible: Accessible
) -> None:
    event_id, _ = _processed_lead(console, "Replays Ltd")
    with console.sessions.begin() as session:  # as a worker that gave up on it would leave it
        session.execute(
            update(InboxEvent)
            .where(InboxEvent.id == event_id)
            .values(status="failed", error="TransientError: the database went away")
        )
    sign_in(page, console.make_user("agent"))
    page.goto("/console/")
    page.get_by_role("link", name="Failed events").click()
    expect(page.get_by_role("heading", level=1, name="Events")).to_be_visible()
    accessible(page)
    page.get_by_role("link", name=f"#{event_id}", exact=True).click()
    expect(page.get_by_text("TransientError: the database went away")).to_be_visible()
    accessible(page)
    page.get_by_role("link", name="Replay this event…").click()
    accessible(page)
    page.get_by_role("button", name=f"Replay event #{event_id}").click()
    expect(page.get_by_text(f"Event {event_id} is queued to be processed again.")).to_be_visible()
    wait_until(lambda: _status(console, event_id) == "processed", timeout=60, what="the replay")
    page.reload()
    expect(page.get_by_role("heading", level=1)).to_contain_text("processed")


def test_a_viewer_sees_no_write_button_and_a_forged_write_is_refused(
    page: Page, console: Console, sign_in: SignIn, accessible: Accessible
) -> None:
    event_id, email = _processed_lead(console, "Viewers Ltd")
    with console.sessions() as session:
        contact = session.scalars(select(Contact).where(Contact.email_normalized == email)).one()
        customer_id, contact_id = contact.customer_id, contact.id
    sign_in(page, console.make_user("viewer"))
    page.goto(f"/console/people/customers/{customer_id}")
    expect(page.get_by_role("heading", name="Contacts")).to_be_visible()
    main = page.get_by_role("main")
    expect(main.get_by_role("button")).to_have_count(1)  # the timeline's filter, nothing else
    expect(main.get_by_role("link", name="Edit")).to_have_count(0)
    expect(page.get_by_role("heading", name="Log a call, a meeting or a note")).to_have_count(0)
    accessible(page)
    page.goto(f"/console/events/{event_id}")
    expect(page.get_by_role("link", name="Replay this event…")).to_have_count(0)
    # The session's own token, a request the page itself could have sent: still refused.
    token = page.locator('meta[name="csrf-token"]').get_attribute("content") or ""
    forged = page.request.post(
        console.url(f"/console/people/contacts/{contact_id}/edit"),
        form={"full_name": "Forged", "csrf_token": token},
        max_redirects=0,
    )
    assert forged.status == 403
    assert "does not allow" in forged.text()
    replay = page.request.post(
        console.url(f"/console/events/{event_id}/replay"),
        headers={"X-CSRF-Token": token},
        max_redirects=0,
    )
    assert replay.status == 403
    page.goto(f"/console/people/contacts/{contact_id}/edit")
    expect(page.get_by_role("heading", level=1, name="Not allowed")).to_be_visible()
    accessible(page)
    with console.sessions() as session:
        assert session.get(Contact, contact_id).full_name == "Grace Hopper"  # type: ignore[union-attr]
