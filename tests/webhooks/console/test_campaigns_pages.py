"""The Campaigns pages: the list, composing with a segment form and a live recipient count,
a preview of the real message, schedule, pause, resume and cancel, the stats chart; each
change refused for a role without the ``campaigns`` permission."""

from __future__ import annotations

import html as html_text
import re
from collections.abc import Callable

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from crm_core.campaigns.models import CampaignSend, MarketingCampaign
from crm_core.customers.models import Contact, Customer

SignedIn = Callable[[str], tuple[FlaskClient, str]]

COMPOSED = {
    "name": "Spring",
    "code": "spring-console",
    "subject": "Hello {{ contact.first_name }}",
    "text": "Hi {{ contact.first_name }}, leave: {{ unsubscribe_url }}",
    "html": '<p>Hi {{ contact.first_name }}</p><script>alert("x")</script>',
    "mode": "all",
    "rule-0-field": "country",
    "rule-0-op": "eq",
    "rule-0-value": "DE",
}


def _contacts(app: Flask, *countries: str) -> list[int]:
    ids = []
    with app.extensions["crm"].sessions.begin() as session:
        customer = Customer(name="Ada Co", name_key="ada co", kind="company")
        session.add(customer)
        session.flush()
        for n, country in enumerate(countries):
            contact = Contact(
                customer_id=customer.id,
                first_name=f"Ada{n}",
                email=f"ada{n}@example.com",
                email_normalized=f"ada{n}@example.com",
                country=country,
            )
            session.add(contact)
            session.flush()
            ids.append(contact.id)
    return ids


def _create(client: FlaskClient, token: str, **changes: str) -> int:
    answer = client.post("/console/campaigns/new", data={**COMPOSED, **changes,
                                                          "csrf_token": token})  # fmt: skip
    assert answer.status_code == 303, answer.get_data(as_text=True)[-3000:]
    match = re.search(r"/console/campaigns/(\d+)$", answer.headers["Location"])
    assert match
    return int(match.group(1))


def _status(app: Flask, campaign_id: int) -> str:
    with app.extensions["crm"].sessions() as session:
        campaign = session.get(MarketingCampaign, campaign_id)
        assert campaign is not None
        return campaign.status


def test_composing_counts_recipients_live_and_saves_the_segment(
    app: Flask, signed_in: SignedIn
) -> None:
    _contacts(app, "DE", "DE", "FR")
    client, token = signed_in("admin")
    form = client.get("/console/campaigns/new").get_data(as_text=True)
    assert 'hx-get="/console/campaigns/recipients"' in form
    assert "<strong>3</strong> recipients" in form
    count = client.get("/console/campaigns/recipients?rule-0-field=country&rule-0-op=eq"
                       "&rule-0-value=DE").get_data(as_text=True)  # fmt: skip
    assert "<strong>2</strong> recipients" in count
    anyone = client.get("/console/campaigns/recipients?mode=any&rule-0-field=country"
                        "&rule-0-op=in&rule-0-value=DE,FR").get_data(as_text=True)  # fmt: skip
    assert "<strong>3</strong> recipients" in anyone
    bad = client.get("/console/campaigns/recipients?rule-0-field=shoe_size&rule-0-op=eq")
    assert "The segment is not valid" in bad.get_data(as_text=True)
    campaign_id = _create(client, token)
    with app.extensions["crm"].sessions() as session:
        campaign = session.get(MarketingCampaign, campaign_id)
        assert campaign is not None
        assert campaign.segment == {"all": [{"field": "country", "op": "eq", "value": "DE"}]}
        assert campaign.status == "draft"
    listed = client.get("/console/campaigns").get_data(as_text=True)
    assert f'href="/console/campaigns/{campaign_id}">Spring' in listed


def test_bad_input_is_shown_beside_each_field(app: Flask, signed_in: SignedIn) -> None:
    client, token = signed_in("admin")
    bad = {**COMPOSED, "name": "", "subject": "{{ unclosed", "rule-1-field": "shoe_size",
           "csrf_token": token}  # fmt: skip
    refused = client.post("/console/campaigns/new", data=bad)
    assert refused.status_code == 422
    html = refused.get_data(as_text=True)
    assert 'id="f-name-error"' in html
    assert 'id="f-subject-error"' in html
    assert 'id="rule-1-error"' in html
    assert 'value="spring-console"' in html  # what was typed stays
    with app.extensions["crm"].sessions() as session:
        assert session.scalars(select(MarketingCampaign)).first() is None


def test_preview_renders_the_real_message_for_a_contact(app: Flask, signed_in: SignedIn) -> None:
    app.extensions["crm"].settings.public_url = "https://crm.example.com"  # for its links
    [ada] = _contacts(app, "DE")
    client, token = signed_in("admin")
    campaign_id = _create(client, token)
    page = client.get(f"/console/campaigns/{campaign_id}/preview?contact=ada0@example.com")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert '<dd id="preview-subject">Hello Ada0</dd>' in html
    text = html.split('<pre id="preview-text">')[1].split("</pre>")[0]
    assert "Hi Ada0, leave: " in html_text.unescape(text)
    assert "/unsubscribe/" in text
    frame = re.search(r'<iframe class="mail" sandbox="" [^>]*srcdoc="([^"]*)"', html)
    assert frame
    assert "Hi Ada0" in html_text.unescape(frame.group(1))
    assert "alert" not in html_text.unescape(frame.group(1))
    by_id = client.get(f"/console/campaigns/{campaign_id}/preview?contact={ada}")
    assert by_id.status_code == 200
    missing = client.get(f"/console/campaigns/{campaign_id}/preview?contact=nobody@example.com")
    assert missing.status_code == 422
    assert 'id="f-contact-error">there is no contact' in missing.get_data(as_text=True)


def test_schedule_pause_resume_and_cancel(app: Flask, signed_in: SignedIn) -> None:
    _contacts(app, "DE")
    client, token = signed_in("admin")
    campaign_id = _create(client, token)
    base = f"/console/campaigns/{campaign_id}"
    refused = client.post(f"{base}/schedule", data={"send_at": "", "csrf_token": token})
    assert refused.status_code == 422
    assert 'id="f-send_at-error"' in refused.get_data(as_text=True)
    past = client.post(f"{base}/schedule", data={"send_at": "nonsense", "csrf_token": token})
    assert past.status_code == 422
    when = {"send_at": "2999-01-01T09:00", "csrf_token": token}
    assert client.post(f"{base}/schedule", data=when).status_code == 303
    assert _status(app, campaign_id) == "scheduled"
    page = client.get(base).get_data(as_text=True)
    assert f'hx-get="{base}/stats" hx-trigger="every 2s"' in page  # refreshing while live
    assert client.post(f"{base}/pause", data={"csrf_token": token}).status_code == 303
    assert _status(app, campaign_id) == "paused"
    assert "every 2s" not in client.get(base).get_data(as_text=True)
    wrong = client.post(f"{base}/pause", data={"csrf_token": token})
    assert wrong.status_code == 409
    assert "pause" in wrong.get_data(as_text=True)
    assert client.post(f"{base}/resume", data={"csrf_token": token}).status_code == 303
    assert _status(app, campaign_id) == "scheduled"
    assert client.post(f"{base}/cancel", data={"csrf_token": token}).status_code == 303
    assert _status(app, campaign_id) == "cancelled"


def test_the_stats_chart_counts_each_outcome(app: Flask, signed_in: SignedIn) -> None:
    ids = _contacts(app, "DE", "DE", "DE")
    client, token = signed_in("admin")
    campaign_id = _create(client, token)
    with app.extensions["crm"].sessions.begin() as session:
        for contact_id, status in zip(ids, ("sent", "sent", "failed"), strict=True):
            session.add(CampaignSend(campaign_id=campaign_id, contact_id=contact_id,
                                     email=f"{contact_id}@example.com", status=status))  # fmt: skip
    fragment = client.get(f"/console/campaigns/{campaign_id}/stats").get_data(as_text=True)
    assert '<td class="num" data-stat="sent">2</td>' in fragment
    assert '<td class="num" data-stat="failed">1</td>' in fragment
    assert '<td class="num" data-stat="complained">0</td>' in fragment
    assert "<title>2 sent</title>" in fragment


def test_forged_campaign_writes_without_the_permission_are_refused(
    app: Flask, signed_in: SignedIn
) -> None:
    admin, admin_token = signed_in("admin")
    campaign_id = _create(admin, admin_token)
    for role in ("viewer", "agent"):
        client, token = signed_in(role)
        page = client.get(f"/console/campaigns/{campaign_id}").get_data(as_text=True)
        assert "Schedule" not in page
        assert "Cancel the campaign" not in page
        assert client.get("/console/campaigns/new").status_code == 403
        created = client.post("/console/campaigns/new", data={**COMPOSED, "code": f"x-{role}",
                                                               "csrf_token": token})  # fmt: skip
        assert created.status_code == 403
        for action in ("schedule", "send", "pause", "resume", "cancel"):
            forged = {"send_at": "2999-01-01T09:00", "csrf_token": token}
            answer = client.post(f"/console/campaigns/{campaign_id}/{action}", data=forged)
            assert answer.status_code == 403, (role, action)
    assert _status(app, campaign_id) == "draft"
