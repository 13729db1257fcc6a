"""GET /metrics for an admin key, the intake's series, and X-Request-ID on every answer."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from flask import Flask

from tests.crm_core.ops.test_metrics import samples
from tests.signed import fixture_bytes
from tests.webhooks.conftest import Sender

PROBLEM = "application/problem+json"
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


@pytest.fixture(autouse=True)
def _this_process_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """/metrics here shows the test process's own values, whatever the environment says."""
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)


def _scrape(app: Flask, key: str) -> Samples:
    response = app.test_client().get("/metrics", headers={"Authorization": f"Bearer {key}"})
    assert response.status_code == 200
    assert response.mimetype == "text/plain"
    return samples(response.get_data())


def _received(found: Samples, source: str, kind: str, code: str) -> float:
    labels = (("code", code), ("kind", kind), ("source", source))
    return found.get(("crm_webhooks_received_total", labels), 0.0)


def test_metrics_need_a_key_with_the_admin_scope(app: Flask, make_key: Callable[..., str]) -> None:
    client = app.test_client()
    anonymous = client.get("/metrics")
    assert anonymous.status_code == 401
    assert anonymous.mimetype == PROBLEM
    reader = client.get("/metrics", headers={"Authorization": f"Bearer {make_key('r', 'read')}"})
    assert reader.status_code == 403
    assert reader.json["scope"] == "admin"
    admin = make_key("ops", "admin")
    assert "crm_webhooks_received_total" in client.get(
        "/metrics", headers={"Authorization": f"Bearer {admin}"}
    ).get_data(as_text=True)


def test_each_answer_is_counted_by_source_kind_and_code(
    app: Flask, make_sender: Callable[..., Sender], make_key: Callable[..., str]
) -> None:
    admin = make_key("ops", "admin")
    sender = make_sender("metered-shop")
    before = _scrape(app, admin)
    body = fixture_bytes("lead.json")
    assert sender.post("leads", body, msg_id="msg_m1").status_code == 202
    assert sender.post("leads", body, msg_id="msg_m1").status_code == 200
    forged = Sender(sender.client, sender.name, "whsec_" + "A" * 32)
    assert forged.post("tickets", body).status_code == 401
    unknown = Sender(sender.client, "no-such-source", sender.secret)
    assert unknown.post("leads", body).status_code == 404
    after = _scrape(app, admin)

    def delta(source: str, kind: str, code: str) -> float:
        return _received(after, source, kind, code) - _received(before, source, kind, code)

    assert delta("metered-shop", "leads", "202") == 1
    assert delta("metered-shop", "leads", "200") == 1
    assert delta("metered-shop", "tickets", "401") == 1
    # An unknown source is never a label of its own: the names are the sender's to invent.
    assert delta("(none)", "leads", "404") == 1
    assert not any(labels for (_, labels) in after if ("source", "no-such-source") in labels)
    count = ("crm_webhook_intake_seconds_count", ())
    assert after[count] - before.get(count, 0.0) == 4


def test_a_request_id_sent_is_returned_and_one_is_made_otherwise(
    app: Flask, sender: Sender
) -> None:
    body = fixture_bytes("lead.json")
    sent = sender.post("leads", body, headers={"X-Request-ID": "lb-7f3a:42"})
    assert sent.headers["X-Request-ID"] == "lb-7f3a:42"
    made = sender.post("leads", body)
    assert re.fullmatch(r"[0-9a-f]{32}", made.headers["X-Request-ID"])
    forged = sender.post("leads", body, headers={"X-Request-ID": 'x" level="ERROR'})
    assert re.fullmatch(r"[0-9a-f]{32}", forged.headers["X-Request-ID"])
    assert app.test_client().get("/healthz").headers["X-Request-ID"]


def test_the_intake_logs_one_line_with_the_event_and_its_request(
    app: Flask, sender: Sender, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO", logger="webhooks.telemetry")
    response = sender.post(
        "leads", fixture_bytes("lead.json"), headers={"X-Request-ID": "req-intake-1"}
    )
    [line] = [r for r in caplog.records if r.name == "webhooks.telemetry"]
    assert line.getMessage() == "webhook answered 202"
    assert line.event_id == response.json["event_id"]  # type: ignore[attr-defined]
    assert (line.source, line.kind) == ("shop", "leads")  # type: ignore[attr-defined]
    assert line.request_id == "req-intake-1"  # type: ignore[attr-defined]
