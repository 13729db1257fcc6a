"""Cases, Pipeline and Campaigns in a real browser, against the real platform: an agent
answers a case and the reply reaches the SMTP sink in the customer's thread; a marketer
schedules a campaign and watches its stats move as the worker sends it; a viewer finds no
control that writes on these pages."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
from email.message import EmailMessage

import requests
from playwright.sync_api import Page, expect
from sqlalchemy import select

from crm_core.customers.models import Contact, Customer
from crm_core.editing import opportunities
from crm_core.support.models import SupportCase
from tests.console.conftest import OPERATOR, SUPPORT_ADDRESS, Console, User
from tests.processes import wait_until
from tests.signed import signed_headers


def _mail_in(console: Console, sender: str, subject: str) -> str:
    """Post an e-mail from ``sender`` to the intake; its Message-ID."""
    message = EmailMessage()
    message["From"] = sender
    message["To"] = SUPPORT_ADDRESS
    message["Subject"] = subject
    message_id = f"<{uuid.uuid4().hex}@client.example>"
    message["Message-ID"] = message_id
    message.set_content("The printer prints nothing.")
    message.add_alternative("<p>The printer prints <b>nothing</b>.</p>", subtype="html")
    body = message.as_bytes()
    answer = requests.post(
        console.url(f"/webhooks/{console.source}/emails"),
        data=body,
        headers=signed_headers(console.secret, body, content_type="message/rfc822"),
        timeout=10,
    )
    assert answer.status_code == 202, answer.text
    return message_id


def _case_of(console: Console, subject: str) -> int | None:
    with console.sessions() as session:
        return session.scalar(select(SupportCase.id).where(SupportCase.subject == subject))


def test_an_agent_replies_to_a_case_and_the_reply_reaches_the_customer_threaded(
    page: Page,
    console: Console,
    sign_in: Callable[[Page, User], None],
    accessible: Callable[[Page], None],
) -> None:
    assert console.mail is not None
    tag = uuid.uuid4().hex[:6]
    customer = f"client-{tag}@client.example"
    subject = f"Printer {tag}"
    root = _mail_in(console, customer, subject)
    wait_until(lambda: _case_of(console, subject) is not None, timeout=60, what="the case")
    case_id = _case_of(console, subject)
    sign_in(page, console.make_user("agent"))
    page.get_by_role("link", name="Cases").click()
    expect(page.get_by_role("heading", level=1, name="Cases")).to_be_visible()
    accessible(page)
    page.get_by_role("link", name=f"#{case_id} {subject}").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text(subject)
    frame = page.frame_locator("iframe.mail").first
    expect(frame.locator("b")).to_have_text("nothing")
    accessible(page)
    body = f"Switch it off and on again, {tag}."
    form_key = page.locator('input[name="form_key"]').get_attribute("value") or ""
    token = page.locator('meta[name="csrf-token"]').get_attribute("content") or ""
    page.get_by_label(f"Reply to {customer}").fill(body)
    page.get_by_role("button", name="Send reply").click()
    expect(page.get_by_text("Reply sent.")).to_be_visible()
    expect(page.locator("ol.thread")).to_contain_text(body)

    def delivered() -> list:
        return [m for m in console.mail.handler.received if customer in m.rcpt_tos]  # type: ignore[union-attr]

    wait_until(lambda: bool(delivered()), timeout=30, what="the reply at the SMTP sink")
    [mail] = delivered()
    assert mail.message["In-Reply-To"] == root
    assert root in str(mail.message["References"])
    assert str(mail.message["Subject"]).startswith(f"Re: {subject} [Case #{case_id}")
    # The same form posted again (a double click, a resubmit) sends nothing more.
    again = page.request.post(
        console.url(f"/console/cases/{case_id}/reply"),
        form={"message": body, "form_key": form_key, "csrf_token": token},
    )
    assert again.ok
    assert "already sent" in again.text()
    assert len(delivered()) == 1
    with console.sessions() as session:
        found = session.get(SupportCase, case_id)
        assert found is not None
        assert found.first_responded_at is not None


def _audience(console: Console, tag: str, size: int) -> None:
    with console.sessions.begin() as session:
        customer = Customer(name=f"Audience {tag}", name_key=f"audience {tag}", kind="company")
        session.add(customer)
        session.flush()
        for n in range(size):
            address = f"reader{n}-{tag}@audience.example"
            session.add(
                Contact(
                    customer_id=customer.id,
                    first_name=f"Reader{n}",
                    email=address,
                    email_normalized=address,
                    job_title=f"reader {tag}",
                )
            )


def test_a_marketer_schedules_a_campaign_and_watches_its_stats_move(
    page: Page,
    console: Console,
    sign_in: Callable[[Page, User], None],
    accessible: Callable[[Page], None],
) -> None:
    assert console.mail is not None
    tag = uuid.uuid4().hex[:6]
    _audience(console, tag, 5)
    sign_in(page, console.make_user("admin"))
    page.goto("/console/campaigns/new")
    accessible(page)
    page.get_by_label("Name").fill(f"Autumn {tag}")
    page.get_by_label("Code (the utm_campaign of its links)").fill(f"autumn-{tag}")
    page.get_by_label("Subject").fill("Hello {{ contact.first_name }}")
    text = "Hi {{ contact.first_name }}: {{ unsubscribe_url }}"
    page.get_by_label("Text (required)", exact=True).fill(text)
    page.get_by_label("Field of rule 1").select_option("job_title")
    page.get_by_label("Test of rule 1").select_option("eq")
    page.get_by_label("Value of rule 1").fill(f"reader {tag}")
    expect(page.locator("#recipients")).to_contain_text("5 recipients")  # counted live
    page.get_by_role("button", name="Save campaign").click()
    expect(page.get_by_text("Campaign saved.")).to_be_visible()
    accessible(page)
    page.get_by_label("Contact (id or e-mail address)").fill(f"reader0-{tag}@audience.example")
    page.get_by_role("button", name="Preview").click()
    expect(page.locator("#preview-subject")).to_have_text("Hello Reader0")
    soon = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=61)
    page.get_by_label("Send at (UTC)").fill(soon.strftime("%Y-%m-%dT%H:%M"))
    page.get_by_role("button", name="Schedule").click()
    expect(page.locator("#campaign-status")).to_have_text("scheduled")
    # The page refreshes itself: without a reload the sends appear and the status moves on.
    expect(page.locator('[data-stat="sent"]')).to_have_text("5", timeout=150_000)
    expect(page.locator("#campaign-status")).to_have_text("sent", timeout=30_000)
    accessible(page)
    received = [m for m in console.mail.handler.received if tag in " ".join(m.rcpt_tos)]
    assert len(received) == 5


def test_a_viewer_finds_no_write_control_on_cases_pipeline_and_campaigns(
    page: Page,
    console: Console,
    sign_in: Callable[[Page, User], None],
    accessible: Callable[[Page], None],
) -> None:
    tag = uuid.uuid4().hex[:6]
    subject = f"Viewer sees {tag}"
    _mail_in(console, f"v-{tag}@client.example", subject)
    wait_until(lambda: _case_of(console, subject) is not None, timeout=60, what="the case")
    with console.sessions.begin() as session:
        customer = Customer(name=f"Deals {tag}", name_key=f"deals {tag}", kind="company")
        session.add(customer)
        session.flush()
        opportunities.create_opportunity(
            session, actor=OPERATOR, document={"customer_id": customer.id, "name": f"Deal {tag}"}
        )
    sign_in(page, console.make_user("viewer"))
    for path in ("/console/cases?show=all", f"/console/cases/{_case_of(console, subject)}",
                 "/console/pipeline", "/console/campaigns"):  # fmt: skip
        page.goto(path)
        expect(page.get_by_role("heading", level=1)).to_be_visible()
        accessible(page)
        # The only form that posts is signing out.
        posting = page.locator("main form[method=post]")
        expect(posting).to_have_count(0)
    page.goto("/console/campaigns/new")
    expect(page.get_by_role("heading", level=1, name="Not allowed")).to_be_visible()
    token = page.locator('meta[name="csrf-token"]').get_attribute("content")
    forged = page.request.post(
        console.url(f"/console/cases/{_case_of(console, subject)}/notes"),
        form={"summary": "forged", "csrf_token": token or ""},
    )
    assert forged.status == 403
