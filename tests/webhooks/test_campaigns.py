"""The campaigns API and the unsubscribe pages, through the Flask test client."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import Engine, func, select

from crm_core.activities.models import Activity, ActivityType
from crm_core.bounces.models import Suppression
from crm_core.campaigns import scheduling
from crm_core.campaigns.models import CampaignSend, SendStatus
from crm_core.campaigns.unsubscribe import make_unsubscribe_token
from crm_core.config import Settings
from crm_core.customers.models import Contact, Customer
from webhooks.app import create_app


@pytest.fixture
def app(database_url: str, committed_db: Engine) -> Flask:
    """The web app with a signing secret (unsubscribe links need one)."""
    settings = Settings(
        database_url=database_url,
        broker_url="memory://",
        ratelimit_url="memory://",
        ratelimit_prefix=f"test-{uuid.uuid4().hex}",
        secret_key="campaign-test-secret",
        public_url="https://crm.example.com",
    )
    return create_app(settings)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def auth(api_key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {api_key}"}


@pytest.fixture
def contact_id(app: Flask) -> int:
    with app.extensions["crm"].sessions.begin() as session:
        customer = Customer(name="Ada Co", name_key="ada co", kind="company")
        session.add(customer)
        session.flush()
        contact = Contact(
            customer_id=customer.id,
            first_name="Ada",
            email="Ada@Example.com",
            email_normalized="ada@example.com",
        )
        session.add(contact)
        session.flush()
        return contact.id


CAMPAIGN = {
    "name": "Spring",
    "code": "spring",
    "subject": "Hello {{ contact.first_name }}",
    "text": "Hi {{ contact.first_name }}, leave: {{ unsubscribe_url }}",
    "html": "<p>Hi {{ contact.first_name }}</p>",
    "segment": {"all": [{"field": "country", "op": "eq", "value": "de"}]},
}


def _create(client: FlaskClient, auth: dict[str, str], **changes: Any) -> int:
    response = client.post("/api/campaigns", json={**CAMPAIGN, **changes}, headers=auth)
    assert response.status_code == 201, response.json
    return int(response.json["id"])  # type: ignore[index]


def test_create_show_and_move_through_states(client: FlaskClient, auth: dict[str, str]) -> None:
    campaign_id = _create(client, auth)
    shown = client.get(f"/api/campaigns/{campaign_id}", headers=auth).json
    assert shown["status"] == "draft"
    assert shown["stats"]["targeted"] == 0
    counts = ("complained", "reported_bounced", "reported_complained")
    assert {name: shown["stats"][name] for name in counts} == dict.fromkeys(counts, 0)
    when = "2030-01-01T09:00:00+00:00"
    scheduled = client.post(
        f"/api/campaigns/{campaign_id}/schedule", json={"send_at": when}, headers=auth
    )
    assert (scheduled.status_code, scheduled.json["status"]) == (200, "scheduled")
    assert scheduled.json["send_at"] == when
    paused = client.post(f"/api/campaigns/{campaign_id}/pause", headers=auth)
    assert paused.json["status"] == "paused"
    refused = client.post(f"/api/campaigns/{campaign_id}/send", headers=auth)
    assert refused.status_code == 409
    assert refused.mimetype == "application/problem+json"
    assert client.post(f"/api/campaigns/{campaign_id}/resume", headers=auth).json["status"] == (
        "scheduled"
    )
    sent = client.post(f"/api/campaigns/{campaign_id}/send", headers=auth)
    assert (sent.status_code, sent.json["status"]) == (200, "scheduled")
    cancelled = client.post(f"/api/campaigns/{campaign_id}/cancel", headers=auth)
    assert cancelled.json["status"] == "cancelled"
    listed = client.get("/api/campaigns", headers=auth).json["items"]
    assert [item["id"] for item in listed] == [campaign_id]


def test_a_cron_schedule_recurs(client: FlaskClient, auth: dict[str, str]) -> None:
    campaign_id = _create(client, auth)
    url = f"/api/campaigns/{campaign_id}/schedule"
    recurring = client.post(url, json={"cron": "0 9 * * mon"}, headers=auth)
    assert recurring.status_code == 200
    assert recurring.json["schedule_cron"] == "0 9 * * mon"
    assert recurring.json["current_run"] == 1
    first = dt.datetime.fromisoformat(recurring.json["send_at"])
    assert (first.weekday(), first.hour, first.minute) == (0, 9, 0)
    for bad in ({"cron": "every monday"}, {"cron": "0 9 * *"}, {}):
        refused = client.post(url, json=bad, headers=auth)
        assert refused.status_code == 422
        assert refused.mimetype == "application/problem+json"
        assert refused.json["errors"][0]["field"] in ("cron", "send_at")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({**CAMPAIGN, "segment": {"all": [{"field": "x", "op": "eq", "value": 1}]}}, "segment"),
        ({**CAMPAIGN, "subject": "{% if %}"}, "subject"),
        ({**CAMPAIGN, "send_at": "tomorrow"}, "send_at"),
        ({k: v for k, v in CAMPAIGN.items() if k != "text"}, "text"),
        ([1, 2], "body"),
    ],
)
def test_bad_campaigns_are_422_naming_the_field(
    client: FlaskClient, auth: dict[str, str], body: Any, field: str
) -> None:
    response = client.post("/api/campaigns", json=body, headers=auth)
    assert response.status_code == 422
    assert any(error["field"].startswith(field) for error in response.json["errors"])


@pytest.mark.parametrize("when", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:00:00-01:00"])
def test_a_date_out_of_range_is_422_never_500(
    client: FlaskClient, auth: dict[str, str], when: str
) -> None:
    created = client.post("/api/campaigns", json={**CAMPAIGN, "send_at": when}, headers=auth)
    assert created.status_code == 422
    assert [e["field"] for e in created.json["errors"]] == ["send_at"]
    campaign_id = _create(client, auth)
    scheduled = client.post(
        f"/api/campaigns/{campaign_id}/schedule", json={"send_at": when}, headers=auth
    )
    assert scheduled.status_code == 422
    assert [e["field"] for e in scheduled.json["errors"]] == ["send_at"]
    segment = {"all": [{"field": "created_at", "op": "gt", "value": when}]}
    in_segment = client.post(
        "/api/campaigns", json={**CAMPAIGN, "code": "other", "segment": segment}, headers=auth
    )
    assert in_segment.status_code == 422
    assert [e["field"] for e in in_segment.json["errors"]] == ["segment.all.0.value"]


def test_a_cron_that_never_matches_is_422(client: FlaskClient, auth: dict[str, str]) -> None:
    campaign_id = _create(client, auth)
    response = client.post(
        f"/api/campaigns/{campaign_id}/schedule", json={"cron": "0 0 30 2 *"}, headers=auth
    )
    assert response.status_code == 422
    assert response.json["errors"][0]["field"] == "cron"


def test_unknown_campaign_and_missing_key(client: FlaskClient, auth: dict[str, str]) -> None:
    assert client.get("/api/campaigns/999999", headers=auth).status_code == 404
    assert client.post("/api/campaigns/999999/pause", headers=auth).status_code == 404
    assert client.get("/api/campaigns/99999999999999999999", headers=auth).status_code == 404
    assert client.get("/api/campaigns/1").status_code == 401
    assert client.post("/api/campaigns", json=CAMPAIGN).status_code == 401


def test_preview_renders_one_contact(
    client: FlaskClient, auth: dict[str, str], contact_id: int
) -> None:
    campaign_id = _create(client, auth)
    response = client.get(
        f"/api/campaigns/{campaign_id}/preview?contact_id={contact_id}", headers=auth
    )
    assert response.status_code == 200, response.json
    doc = response.json
    assert doc["subject"] == "Hello Ada"
    assert doc["html"].strip() == "<p>Hi Ada</p>"
    url = doc["headers"]["List-Unsubscribe"].strip("<>")
    assert url in doc["text"]
    assert doc["headers"]["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert doc["headers"]["Auto-Submitted"] == "auto-generated"
    bad = client.get(f"/api/campaigns/{campaign_id}/preview?contact_id=abc", headers=auth)
    assert bad.status_code == 422
    missing = client.get(f"/api/campaigns/{campaign_id}/preview?contact_id=999999", headers=auth)
    assert missing.status_code == 404


def test_a_template_past_a_bound_is_422_naming_it_at_create_and_preview(
    client: FlaskClient, auth: dict[str, str], contact_id: int
) -> None:
    created = client.post(
        "/api/campaigns",
        json={**CAMPAIGN, "html": '{{ "%010000000d" % 1 }}'},
        headers=auth,
    )
    assert created.status_code == 422
    assert created.json["errors"][0]["field"] == "html"
    assert "format width" in created.json["errors"][0]["message"]
    # Past a bound only for this contact's data: created, then refused by the preview.
    campaign_id = _create(
        client, auth,
        text='{% if contact.first_name == "Ada" %}{{ "x"|center(10000000) }}{% endif %}',
    )  # fmt: skip
    preview = client.get(
        f"/api/campaigns/{campaign_id}/preview?contact_id={contact_id}", headers=auth
    )
    assert preview.status_code == 422
    assert preview.json["errors"] == [
        {"field": "text", "message": "exceeds the bound on padding width (1,000)",
         "type": "template_bound"}
    ]  # fmt: skip


def test_preview_without_a_public_url_is_a_problem_naming_the_setting(
    app: Flask, client: FlaskClient, auth: dict[str, str], contact_id: int
) -> None:
    campaign_id = _create(client, auth)
    settings = app.extensions["crm"].settings
    unset = create_app(settings.model_copy(update={"public_url": ""})).test_client()
    response = unset.get(
        f"/api/campaigns/{campaign_id}/preview?contact_id={contact_id}", headers=auth
    )
    assert response.status_code == 503
    assert response.mimetype == "application/problem+json"
    assert response.json["type"].endswith("/misconfigured")
    assert "CRM_PUBLIC_URL must be set" in response.json["detail"]


def _token(app: Flask, contact_id: int, **kw: Any) -> str:
    secret = kw.pop("secret", app.extensions["crm"].settings.resolved_secret_key())
    return make_unsubscribe_token(secret_key=secret, contact_id=contact_id, campaign_id=None)


def _suppressed(app: Flask) -> tuple[int, int]:
    with app.extensions["crm"].sessions() as session:
        suppressions = session.scalar(select(func.count()).select_from(Suppression))
        activities = session.scalar(
            select(func.count())
            .select_from(Activity)
            .where(Activity.type == ActivityType.UNSUBSCRIBED)
        )
    return int(suppressions or 0), int(activities or 0)


def test_get_shows_a_button_and_changes_nothing(
    app: Flask, client: FlaskClient, contact_id: int
) -> None:
    response = client.get(f"/unsubscribe/{_token(app, contact_id)}")
    assert response.status_code == 200
    assert response.mimetype == "text/html"
    assert b'method="post"' in response.data
    assert _suppressed(app) == (0, 0)


def test_post_unsubscribes_once(app: Flask, client: FlaskClient, contact_id: int) -> None:
    url = f"/unsubscribe/{_token(app, contact_id)}"
    first = client.post(url, data={"List-Unsubscribe": "One-Click"})
    again = client.post(url)
    assert (first.status_code, again.status_code) == (200, 200)
    assert _suppressed(app) == (1, 1)


@pytest.mark.parametrize("kind", ["tampered", "wrong-salt", "expired", "garbage"])
def test_bad_tokens_get_a_400_page(
    app: Flask, client: FlaskClient, contact_id: int, kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from itsdangerous import URLSafeTimedSerializer

    secret = app.extensions["crm"].settings.resolved_secret_key()
    token = _token(app, contact_id)
    if kind == "tampered":
        token = token[:-2] + ("AA" if token[-2:] != "AA" else "BB")
    elif kind == "wrong-salt":
        token = str(URLSafeTimedSerializer(secret, salt="other").dumps({"k": contact_id}))
    elif kind == "garbage":
        token = "not-a-token"
    else:
        from itsdangerous.timed import TimestampSigner

        signed_long_ago = int(dt.datetime(2000, 1, 1, tzinfo=dt.UTC).timestamp())
        monkeypatch.setattr(TimestampSigner, "get_timestamp", lambda self: signed_long_ago)
        token = _token(app, contact_id)
        monkeypatch.undo()
    for method in (client.get, client.post):
        response = method(f"/unsubscribe/{token}")
        assert response.status_code == 400
        assert response.mimetype == "text/html"
    assert _suppressed(app) == (0, 0)


def test_sending_a_campaign_without_content_is_a_422_naming_what_is_missing(
    app: Flask, client: FlaskClient, auth: dict[str, str]
) -> None:
    from crm_core.leads.attribution import campaigns_for_codes

    with app.extensions["crm"].sessions.begin() as session:
        draft_id = campaigns_for_codes(session, codes=["from-a-lead"])["from-a-lead"].id
    response = client.post(f"/api/campaigns/{draft_id}/send", headers=auth)
    assert response.status_code == 422
    assert response.content_type == "application/problem+json"
    assert {error["field"] for error in response.json["errors"]} == {"subject", "text"}
    assert client.get(f"/api/campaigns/{draft_id}", headers=auth).json["status"] == "draft"


def _etag(client: FlaskClient, auth: dict[str, str], campaign_id: int) -> str:
    shown = client.get(f"/api/campaigns/{campaign_id}", headers=auth)
    assert shown.status_code == 200
    tag = shown.headers["ETag"]
    assert tag.startswith('"')
    assert not tag.startswith("W/")
    return tag


def test_a_campaign_has_an_etag_and_a_stale_if_match_is_412(
    client: FlaskClient, auth: dict[str, str]
) -> None:
    campaign_id = _create(client, auth)
    first = _etag(client, auth, campaign_id)
    assert _etag(client, auth, campaign_id) == first
    scheduled = client.post(
        f"/api/campaigns/{campaign_id}/schedule",
        json={"send_at": "2030-01-01T09:00:00+00:00"},
        headers={**auth, "If-Match": first},
    )
    assert scheduled.status_code == 200
    second = scheduled.headers["ETag"]
    assert second != first
    assert _etag(client, auth, campaign_id) == second
    stale = client.post(f"/api/campaigns/{campaign_id}/pause", headers={**auth, "If-Match": first})
    assert stale.status_code == 412
    assert stale.mimetype == "application/problem+json"
    assert (stale.json["etag"], stale.headers["ETag"]) == (second, second)  # type: ignore[index]
    assert client.get(f"/api/campaigns/{campaign_id}", headers=auth).json["status"] == "scheduled"
    weak = client.post(
        f"/api/campaigns/{campaign_id}/pause", headers={**auth, "If-Match": f"W/{second}"}
    )
    assert weak.status_code == 412  # If-Match compares strongly
    paused = client.post(
        f"/api/campaigns/{campaign_id}/pause", headers={**auth, "If-Match": f'"x", {second}'}
    )
    assert (paused.status_code, paused.json["status"]) == (200, "paused")
    # No header checks nothing; ``*`` matches any version.
    resumed = client.post(f"/api/campaigns/{campaign_id}/resume", headers=auth)
    assert resumed.status_code == 200
    cancelled = client.post(
        f"/api/campaigns/{campaign_id}/cancel", headers={**auth, "If-Match": "*"}
    )
    assert (cancelled.status_code, cancelled.json["status"]) == (200, "cancelled")
    assert len({first, second, paused.headers["ETag"], resumed.headers["ETag"]}) == 4
    # A 412 for a campaign that is gone would hide the 404.
    missing = client.post("/api/campaigns/999999/pause", headers={**auth, "If-Match": first})
    assert missing.status_code == 404


def test_the_dispatcher_changes_the_etag_and_the_sends_do_not(
    app: Flask, client: FlaskClient, auth: dict[str, str], contact_id: int
) -> None:
    campaign_id = _create(client, auth)
    when = dt.datetime(2030, 1, 1, 9, tzinfo=dt.UTC)
    client.post(
        f"/api/campaigns/{campaign_id}/schedule", json={"send_at": when.isoformat()}, headers=auth
    )
    scheduled = _etag(client, auth, campaign_id)
    sessions = app.extensions["crm"].sessions
    with sessions.begin() as session:
        assert scheduling.claim_campaign(
            session, campaign_id=campaign_id, now=when + dt.timedelta(minutes=1)
        )
        session.add(
            CampaignSend(campaign_id=campaign_id, contact_id=contact_id, email="ada@example.com")
        )
    sending = _etag(client, auth, campaign_id)
    assert sending != scheduled
    before = client.get(f"/api/campaigns/{campaign_id}", headers=auth).json["stats"]
    with sessions.begin() as session:
        send = session.scalars(select(CampaignSend)).one()
        send.status = SendStatus.SENT
        send.sent_at = when
    after = client.get(f"/api/campaigns/{campaign_id}", headers=auth)
    assert after.json["stats"] != before  # the counts moved…
    assert after.headers["ETag"] == sending  # …the campaign did not
    paused = client.post(
        f"/api/campaigns/{campaign_id}/pause", headers={**auth, "If-Match": sending}
    )
    assert paused.status_code == 200
    client.post(f"/api/campaigns/{campaign_id}/resume", headers=auth)
    resumed = _etag(client, auth, campaign_id)
    with sessions.begin() as session:
        finished = scheduling.complete_finished_campaigns(session, now=when + dt.timedelta(hours=1))
    assert finished == [campaign_id]
    assert _etag(client, auth, campaign_id) != resumed
