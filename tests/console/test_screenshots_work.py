"""The Cases, Pipeline, Campaigns and Settings pages at 1280 and 390 pixels wide: each must
render and pass axe at both widths without a sideways scrollbar; ``make screenshots`` keeps
the pictures in docs/console/ (``CRM_SCREENSHOT_DIR``; a test run writes them to a temporary
folder)."""

from __future__ import annotations

import datetime as dt
import uuid
from pathlib import Path

from playwright.sync_api import Page
from sqlalchemy import select
from sqlalchemy.orm import Session

from crm_core.bounces.suppression import suppress
from crm_core.campaigns import services as campaigns
from crm_core.campaigns.models import CampaignSend, CampaignStatus, MarketingCampaign
from crm_core.customers.models import Contact, Customer
from crm_core.db import utcnow
from crm_core.editing import opportunities
from crm_core.support.models import SupportCase
from tests.console.conftest import OPERATOR, Console, User, shoot_at_both_widths
from tests.console.test_work_pages import _mail_in
from tests.processes import wait_until


def _seed(console: Console) -> dict[str, int | str]:
    """A case opened by mail, deals at three stages, a draft campaign and a sent one, a
    suppressed address."""
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
        sent = _sent_campaign(session, customer.id, tag)
        return {
            "case": found,
            "campaign": campaign.id,
            "sent": sent,
            "contact": f"ada-{tag}@engines.example",
        }


# How a sent campaign's 40 recipients fared: its stats chart has something in every bar.
OUTCOMES = ["sent"] * 33 + ["failed"] * 3 + ["unknown"] * 1 + ["sent"] * 3


def _sent_campaign(session: Session, customer_id: int, tag: str) -> int:
    """A campaign sent an hour ago to 40 contacts, some of whom bounced or unsubscribed since."""
    started = utcnow() - dt.timedelta(hours=1)
    campaign = MarketingCampaign(
        name="Summer offers", code=f"summer-{tag}", status=CampaignStatus.SENT,
        subject="Summer offers for {{ contact.first_name }}", text_template="Hello",
        segment={}, started_at=started, completed_at=started + dt.timedelta(minutes=2),
    )  # fmt: skip
    session.add(campaign)
    session.flush()
    for n, outcome in enumerate(OUTCOMES):
        address = f"reader{n}-{tag}@engines.example"
        contact = Contact(customer_id=customer_id, first_name=f"Reader {n}",
                          email=address, email_normalized=address)  # fmt: skip
        session.add(contact)
        session.flush()
        session.add(CampaignSend(campaign_id=campaign.id, contact_id=contact.id, email=address,
                                 status=outcome, attempts=1, created_at=started))  # fmt: skip
    for n, reason in ((36, "bounced"), (37, "unsubscribed"), (38, "unsubscribed")):
        suppress(session, email_normalized=f"reader{n}-{tag}@engines.example", reason=reason)
    return campaign.id


def _pages(seeded: dict[str, int | str]) -> dict[str, str]:
    return {
        "cases": "/console/cases?show=open",
        "case": f"/console/cases/{seeded['case']}",
        "pipeline": "/console/pipeline",
        "campaigns": "/console/campaigns",
        "campaign-compose": "/console/campaigns/new",
        "campaign": f"/console/campaigns/{seeded['sent']}",
        "campaign-preview": f"/console/campaigns/{seeded['campaign']}/preview"
        f"?contact={seeded['contact']}",
        "settings": "/console/settings",
        "source-setup": "/console/settings/sources/website",
    }


def test_every_work_page_at_both_widths(
    page: Page, console: Console, screenshot_folder: Path, sign_in: object
) -> None:
    seeded = _seed(console)
    user: User = console.make_user("admin")
    sign_in(page, user)  # type: ignore[operator]
    shoot_at_both_widths(page, _pages(seeded), screenshot_folder)
