"""The Events pages: filtering, one event whole, replays (one, or all the failed ones a
filter matches), and what a viewer may not do."""

from __future__ import annotations

import re
from collections.abc import Callable

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from crm_core.ingestion.models import InboxEvent
from crm_core.people.models import AuditEntry
from tests.webhooks.conftest import Sender
from tests.webhooks.console.conftest import queries_for, set_status, stored_lead

SignedIn = Callable[[str], tuple[FlaskClient, str]]


def _status(app: Flask, event_id: int) -> str:
    with app.extensions["crm"].sessions() as session:
        event = session.get(InboxEvent, event_id)
        assert event is not None
        return event.status


def _event_ids(html: str) -> list[int]:
    return [int(n) for n in re.findall(r'href="/console/events/(\d+)"', html)]


def test_the_list_filters_by_source_kind_status_and_time(
    app: Flask, make_sender: Callable[..., Sender], signed_in: SignedIn
) -> None:
    shop, web = make_sender("shop"), make_sender("web")
    first = stored_lead(app, shop, process=False, email="a@example.com")
    second = stored_lead(app, web, process=False, email="b@example.com")
    set_status(app, second, "failed", "boom")
    client, _ = signed_in("viewer")
    assert _event_ids(client.get("/console/events").get_data(as_text=True)) == [second, first]
    assert _event_ids(client.get("/console/events?source=shop").get_data(as_text=True)) == [first]
    failed = client.get("/console/events?status=failed").get_data(as_text=True)
    assert _event_ids(failed) == [second]
    assert _event_ids(client.get("/console/events?kind=orders").get_data(as_text=True)) == []
    future = client.get("/console/events?since=2999-01-01T00:00").get_data(as_text=True)
    assert _event_ids(future) == []
    past = client.get("/console/events?until=2999-01-01T00:00&status=received")
    assert _event_ids(past.get_data(as_text=True)) == [first]


def test_a_bad_filter_is_shown_beside_its_field(app: Flask, signed_in: SignedIn) -> None:
    client, _ = signed_in("viewer")
    answer = client.get("/console/events?status=lost&since=yesterday")
    assert answer.status_code == 422
    html = answer.get_data(as_text=True)
    assert re.search(r'id="f-status-error">must be one of received', html)
    assert re.search(r'id="f-since-error">must be an ISO 8601 time', html)
    assert 'aria-describedby="f-since-error"' in html


def test_an_event_shows_its_payload_headers_error_and_what_it_made(
    app: Flask, sender: Sender, signed_in: SignedIn
) -> None:
    event_id = stored_lead(app, sender, email="ada@example.com", first_name="<Ada>")
    client, _ = signed_in("viewer")
    html = client.get(f"/console/events/{event_id}").get_data(as_text=True)
    assert "&#34;first_name&#34;: &#34;&lt;Ada&gt;&#34;" in html  # indented JSON, escaped
    assert "\n  &#34;email&#34;: &#34;ada@example.com&#34;" in html
    assert "<code>webhook-timestamp</code>" in html
    assert re.search(r'href="/console/people/customers/\d+">customer #\d+', html)
    assert re.search(r'href="/console/people/contacts/\d+">contact #\d+', html)
    set_status(app, event_id, "failed", "KeyError: the handler tripped")
    failed = client.get(f"/console/events/{event_id}").get_data(as_text=True)
    assert "KeyError: the handler tripped" in failed
    assert client.get("/console/events/999999").status_code == 404


def test_an_agent_replays_one_event_after_confirming(
    app: Flask, sender: Sender, signed_in: SignedIn
) -> None:
    event_id = stored_lead(app, sender, process=False, email="c@example.com")
    set_status(app, event_id, "failed", "boom")
    client, token = signed_in("agent")
    page = client.get(f"/console/events/{event_id}").get_data(as_text=True)
    assert f'href="/console/events/{event_id}/replay"' in page
    confirm = client.get(f"/console/events/{event_id}/replay")
    assert confirm.status_code == 200
    assert "Replay event" in confirm.get_data(as_text=True)
    answer = client.post(f"/console/events/{event_id}/replay", data={"csrf_token": token})
    assert answer.status_code == 303
    assert _status(app, event_id) == "received"
    with app.extensions["crm"].sessions() as session:
        entry = session.scalars(
            select(AuditEntry).where(AuditEntry.entity == "event", AuditEntry.entity_id == event_id)
        ).one()
    assert entry.action == "replay"
    assert entry.actor.startswith("user:agent-")
    assert "queued to be processed again" in client.get(answer.headers["Location"]).get_data(
        as_text=True
    )
    # Replaying what is waiting already changes nothing, and says why.
    again = client.post(f"/console/events/{event_id}/replay", data={"csrf_token": token})
    assert "Not replayed" in client.get(again.headers["Location"]).get_data(as_text=True)


def test_replaying_every_failed_event_a_filter_matches(
    app: Flask, make_sender: Callable[..., Sender], signed_in: SignedIn
) -> None:
    shop, web = make_sender("shop"), make_sender("web")
    failed_shop = [stored_lead(app, shop, process=False, email=f"s{n}@example.com") for n in (1, 2)]
    failed_web = stored_lead(app, web, process=False, email="w@example.com")
    waiting_shop = stored_lead(app, shop, process=False, email="s3@example.com")
    for event_id in [*failed_shop, failed_web]:
        set_status(app, event_id, "failed", "boom")
    client, token = signed_in("agent")
    confirm = client.get("/console/events/replay?source=shop").get_data(as_text=True)
    assert "Replay 2 event(s)" in confirm
    assert '<input type="hidden" name="source" value="shop">' in confirm
    answer = client.post("/console/events/replay", data={"source": "shop", "csrf_token": token})
    assert answer.status_code == 303
    assert answer.headers["Location"] == "/console/events?source=shop"
    assert [_status(app, e) for e in failed_shop] == ["received", "received"]
    assert _status(app, failed_web) == "failed"
    assert _status(app, waiting_shop) == "received"


def test_a_viewer_sees_no_replay_and_a_forged_one_is_refused(
    app: Flask, sender: Sender, signed_in: SignedIn
) -> None:
    event_id = stored_lead(app, sender, process=False, email="d@example.com")
    set_status(app, event_id, "failed", "boom")
    client, token = signed_in("viewer")
    assert "/replay" not in client.get(f"/console/events/{event_id}").get_data(as_text=True)
    assert "/replay" not in client.get("/console/events").get_data(as_text=True)
    forged = client.post(f"/console/events/{event_id}/replay", data={"csrf_token": token})
    assert forged.status_code == 403
    assert "does not allow &#39;write&#39;" in forged.get_data(as_text=True)
    assert client.post("/console/events/replay", data={"csrf_token": token}).status_code == 403
    assert client.get(f"/console/events/{event_id}/replay").status_code == 403
    assert _status(app, event_id) == "failed"


def test_the_list_and_the_overview_cost_the_same_queries_for_1_or_12_events(
    app: Flask, sender: Sender, signed_in: SignedIn
) -> None:
    stored_lead(app, sender, process=False, email="first@example.com")
    client, _ = signed_in("viewer")
    few = {path: queries_for(app, client, path) for path in ("/console/events", "/console/")}
    for n in range(11):
        event_id = stored_lead(app, sender, process=False, email=f"more{n}@example.com")
        set_status(app, event_id, "failed" if n % 2 else "dead", "boom")
    many = {path: queries_for(app, client, path) for path in ("/console/events", "/console/")}
    assert many == few
